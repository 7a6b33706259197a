"""Training speed and peak memory of both stages at the tiny and the demo configuration on this CPU.

    python benchmarks/bench_train.py [--steps 5]

Each row runs in a fresh process (so peak memory is its own): the StyleGAN2 teacher step (D + R1 + G
+ EMA) and the lifting step (all losses, L1 only: no VGG weights here), random weights.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch


def child(stage: str, preset: str, batch: int, steps: int) -> None:
    from liftedgan_hf.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
    from liftedgan_hf.pipeline import LiftedGAN
    from liftedgan_hf.training.lift import LiftingTrainer, make_optimizer
    from liftedgan_hf.training.script import MODEL_PRESETS
    from liftedgan_hf.training.stylegan2 import StyleGAN2Trainer, make_optimizers

    torch.manual_seed(0)
    config = MODEL_PRESETS[preset]
    if stage == "stylegan2":
        generator = StyleGAN2Generator(**config["generator"])
        discriminator = StyleGAN2Discriminator(resolution=generator.config.resolution, channels=generator.channels)
        trainer = StyleGAN2Trainer(generator, discriminator)
        optimizers = make_optimizers(generator, discriminator, 2e-3, trainer.config)
        real = torch.rand(batch, 3, generator.config.resolution, generator.config.resolution) * 2 - 1

        def step(index):
            trainer.step([real], torch.Generator().manual_seed(index), optimizers, index)
    else:
        model = LiftedGAN(generator_config=config["generator"], lifting_config=config["lifting"])
        model.compute_latent_statistics(2000)
        trainer = LiftingTrainer(model.train())
        optimizer = make_optimizer(model)

        def step(index):
            trainer.step(batch, torch.Generator().manual_seed(index), optimizer, index)

    step(0)  # warm-up (and R1 at step 0)
    start = time.perf_counter()
    for index in range(1, steps + 1):
        step(index)
    seconds = (time.perf_counter() - start) / steps
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--child", nargs=3, metavar=("STAGE", "PRESET", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]), args.steps)
        return
    print(f"{torch.get_num_threads()} threads, mean of {args.steps} steps after one warm-up step\n")
    print("| stage | config | batch | s/step | steps/s | images/s | peak memory |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for stage in ("stylegan2", "lift"):
        for preset, batch in (("tiny", 8), ("demo", 8)):
            output = subprocess.run(
                [sys.executable, __file__, "--steps", str(args.steps), "--child", stage, preset, str(batch)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            result = json.loads(output.strip().splitlines()[-1])
            seconds = result["seconds"]
            print(
                f"| {stage} | {preset} | {batch} | {seconds:.2f} | {1 / seconds:.2f} | {batch / seconds:.1f} "
                f"| {result['peak_mb']:.0f} MB |"
            )


if __name__ == "__main__":
    main()
