"""Training with Accelerate (entry point).

The `stylegan2` and `lift` training stages are built in a later step of the project; until then this
entry point says so instead of pretending to work.
"""

import sys

if __name__ == "__main__":
    sys.exit("train_accelerate.py is not available yet: the training stages are still being written.")
