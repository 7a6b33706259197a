"""Gradio demo of liftedgan-hf (entry point).

The interactive demo (posing, relighting, mesh download) is built in a later step of the project;
until then this entry point says so instead of pretending to work.
"""

import sys

if __name__ == "__main__":
    sys.exit(
        "The Gradio demo is not available yet. Generate faces from the command line instead:\n"
        "  liftedgan-generate --seeds 0-7 --yaw -30:30:15 --outdir out --mesh --gif   (the bundled demo model)"
    )
