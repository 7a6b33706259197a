"""Speed of 3D generation and re-rendering against one teacher forward (official 256 configuration).

    python benchmarks/bench_generate.py [--repeats 5] [--threads N]

Random weights with the official architecture (the timing does not depend on the values). Prints one
table: median times at batch 1 and 8 and their ratios to one ``G.synthesis`` at the same batch size.
Targets from the issue: generation <= 2.0x one teacher forward, re-render <= 0.35x.
"""

from __future__ import annotations

import argparse

import torch
from common import median_seconds

from liftedgan_hf import LiftedGAN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = LiftedGAN().eval()
    print(f"official 256 configuration, {torch.get_num_threads()} threads, median of {args.repeats} runs\n")
    print("| batch | teacher forward | 3D generation | ratio | re-render | ratio |")
    print("|---:|---:|---:|---:|---:|---:|")
    for batch in (1, 8):
        seeds = list(range(batch))
        w = model.style_codes(seed=seeds)
        with torch.no_grad():
            output = model.generate(w=w)
            teacher = median_seconds(lambda w=w: model.generator.synthesis(w, noise_mode="const"), args.repeats)
            generate = median_seconds(lambda w=w: model.generate(w=w), args.repeats)
            rerender = median_seconds(lambda o=output: model.render(o, yaw=30.0, pitch=5.0), args.repeats)
        print(
            f"| {batch} | {teacher * 1000:.0f} ms | {generate * 1000:.0f} ms | {generate / teacher:.2f}x "
            f"| {rerender * 1000:.0f} ms | {rerender / teacher:.2f}x |"
        )


if __name__ == "__main__":
    main()
