"""Images per second of the StyleGAN2 teacher on this CPU.

    python benchmarks/bench_stylegan2.py [--repeats 5]

Rows: the official LiftedGAN 256x256 slim configuration (inference, batch 1 and 8), and one training
step's generator forward+backward of a 64x64 generator with channels <= 128 at batch 16 (for planning
the bundled demo model). Random weights: speed does not depend on their values.
"""

from __future__ import annotations

import argparse

import torch
from common import median_seconds

from liftedgan_hf.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{torch.get_num_threads()} threads, median of {args.repeats} runs\n")
    print("| configuration | batch | time | images/s |")
    print("|---|---:|---:|---:|")
    official = StyleGAN2Generator().eval()
    for batch in (1, 8):
        w = official.mapping(torch.randn(batch, 512)).detach()
        with torch.no_grad():
            seconds = median_seconds(lambda w=w: official.synthesis(w), args.repeats)
        print(f"| official 256 slim, synthesis | {batch} | {seconds * 1000:.0f} ms | {batch / seconds:.1f} |")

    channels = [128, 128, 128, 128, 64]
    generator = StyleGAN2Generator(resolution=64, style_dim=256, n_mlp=4, channels=channels)
    discriminator = StyleGAN2Discriminator(resolution=64, channels=channels)
    z = torch.randn(16, 256)

    def generator_step():
        generator.zero_grad()
        torch.nn.functional.softplus(-discriminator(generator(z, noise_mode="random"))).mean().backward()

    seconds = median_seconds(generator_step, args.repeats)
    print(
        f"| 64px, channels <= 128, G forward+backward through D | 16 | {seconds * 1000:.0f} ms | {16 / seconds:.1f} |"
    )


if __name__ == "__main__":
    main()
