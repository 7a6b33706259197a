"""``liftedgan-generate``: images, depth and normal maps, meshes and animations from a LiftedGAN."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm


def parse_seeds(text: str) -> list[int]:
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11]."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                start, stop = part.split("-", 1)
                first, last = int(start), int(stop)
                if last < first:
                    raise ValueError
                seeds.extend(range(first, last + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad seed list {text!r}: use e.g. 0-31 or 1,5,9") from None
    if any(seed < 0 for seed in seeds):
        raise argparse.ArgumentTypeError(f"seeds must be >= 0, got {text!r}")
    return seeds


def parse_angles(text: str) -> list[float]:
    """'-45:45:15' -> [-45, -30, ..., 45] (stop included); '30' -> [30]; '-10,0,10' -> a list."""
    try:
        if ":" in text:
            start, stop, step = (float(value) for value in text.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            count = round((stop - start) / step) + 1
            return [start + index * step for index in range(count) if start + index * step <= stop + 1e-9]
        return [float(value) for value in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad angle list {text!r}: use START:STOP:STEP or a comma list") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liftedgan-generate",
        description="Generate 3D-aware faces with a LiftedGAN: posed images, depth/normal maps, meshes, GIFs.",
    )
    parser.add_argument("--model", default=None, help="model folder or hub id (default: the bundled demo model)")
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-7"), help="e.g. 0-31 or 1,5,9")
    parser.add_argument("--yaw", type=parse_angles, default=None, help="yaw angles in degrees, e.g. -45:45:15")
    parser.add_argument("--pitch", type=float, default=None, help="pitch in degrees for the --yaw images")
    parser.add_argument("--truncation", type=float, default=None, help="truncation psi (default: the model's)")
    parser.add_argument("--outdir", type=Path, required=True, help="output folder")
    parser.add_argument("--mesh", action="store_true", help="also write a GLB mesh per seed")
    parser.add_argument("--gif", action="store_true", help="also write a rotation GIF per seed")
    parser.add_argument("--mp4", action="store_true", help="also write a rotation MP4 per seed")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    return parser


def _join_negative_values(argv: list[str]) -> list[str]:
    """argparse takes '-45:45:15' after --yaw for an option; join such values as '--yaw=-45:45:15'."""
    joined: list[str] = []
    for argument in argv:
        if joined and joined[-1] in ("--yaw", "--pitch") and re.match(r"^-\d", argument):
            joined[-1] = f"{joined[-1]}={argument}"
        else:
            joined.append(argument)
    return joined


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(_join_negative_values(sys.argv[1:] if argv is None else argv))
    if args.batch_size < 1:
        parser.error("--batch-size must be >= 1")
    for angle in args.yaw or []:
        if not -90 <= angle <= 90:
            parser.error(f"yaw angles must be within [-90, 90], got {angle}")
    if args.pitch is not None and not -90 <= args.pitch <= 90:
        parser.error(f"--pitch must be within [-90, 90], got {args.pitch}")

    from . import DEMO_MODEL
    from .cpu_memory import keep_freed_memory_in_heap
    from .pipeline import LiftedGAN

    keep_freed_memory_in_heap()

    model_path = args.model or DEMO_MODEL
    try:
        model = LiftedGAN.from_pretrained(model_path).to(args.device).eval()
    except (OSError, ValueError) as error:
        parser.exit(2, f"error: cannot load a LiftedGAN from {model_path}: {error}\n")
    args.outdir.mkdir(parents=True, exist_ok=True)

    batches = [args.seeds[start : start + args.batch_size] for start in range(0, len(args.seeds), args.batch_size)]
    with tqdm(total=len(args.seeds), desc="faces", unit="face") as progress:
        for seeds in batches:
            with torch.no_grad():
                output = model.generate(seed=seeds, truncation_psi=args.truncation)
            fields = ("image", "canonical_texture", "albedo", "depth", "normal")
            for field in fields:
                for seed, picture in zip(seeds, output.to_pil(field)):
                    picture.save(args.outdir / f"seed{seed:04d}_{field}.png")
            for yaw in args.yaw or []:
                posed = model.render(output, yaw=yaw, pitch=args.pitch if args.pitch is not None else 0.0, roll=0.0)
                for seed, picture in zip(seeds, posed.to_pil()):
                    picture.save(args.outdir / f"seed{seed:04d}_yaw{yaw:+03.0f}.png")
            for index, seed in enumerate(seeds):
                if args.mesh:
                    model.save_mesh(output, args.outdir / f"seed{seed:04d}.glb", index=index)
                if args.gif:
                    model.rotation_video(output, args.outdir / f"seed{seed:04d}_rotation.gif", index=index)
                if args.mp4:
                    model.rotation_video(output, args.outdir / f"seed{seed:04d}_rotation.mp4", index=index)
            progress.update(len(seeds))
    print(f"wrote {len(args.seeds)} faces to {args.outdir}")


if __name__ == "__main__":
    main()
