"""The README's pictures, produced by a LiftedGAN model itself (by default the bundled demo model).

    python scripts/make_readme_images.py [--model PATH] [--out docs/images]

Writes ``samples.png`` (rows: teacher image, LiftedGAN render, canonical texture, albedo, depth,
normals), ``yaw_sweep.png``, ``relight_sweep.png`` and ``rotation.gif``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from PIL import Image

from liftedgan_hf import DEMO_MODEL, LiftedGAN
from liftedgan_hf.export import save_animation, tensor_to_pil

SEEDS = list(range(8))
YAWS = list(range(-40, 41, 10))
LIGHT_ANGLES = list(range(-60, 61, 20))


def grid(rows: list[list[Image.Image]], scale: int) -> Image.Image:
    """Paste equally sized images row by row, each enlarged ``scale`` times (nearest neighbour)."""
    width, height = rows[0][0].size
    width, height = width * scale, height * scale
    sheet = Image.new("RGB", (width * max(len(row) for row in rows), height * len(rows)), "white")
    for row_index, row in enumerate(rows):
        for column, image in enumerate(row):
            sheet.paste(
                image.convert("RGB").resize((width, height), Image.NEAREST), (column * width, row_index * height)
            )
    return sheet


@torch.no_grad()
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEMO_MODEL)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "images")
    parser.add_argument("--scale", type=int, default=None, help="enlargement (default: to about 128 pixels)")
    args = parser.parse_args(argv)
    model = LiftedGAN.from_pretrained(args.model).eval()
    scale = args.scale or max(1, 128 // model.image_size)
    args.out.mkdir(parents=True, exist_ok=True)

    output = model.generate(seed=SEEDS)
    teacher = tensor_to_pil(model.generator.synthesis(output.w, noise_mode="const").clamp(-1, 1))
    fields = [output.to_pil(field) for field in ("image", "canonical_texture", "albedo", "depth", "normal")]
    grid([teacher, *fields], scale).save(args.out / "samples.png")

    faces = output.__class__(**{key: value[:4] for key, value in output.items()})
    yaw_rows = [
        [model.render(faces, yaw=yaw, pitch=0.0, roll=0.0).to_pil()[index] for yaw in YAWS] for index in range(4)
    ]
    grid(yaw_rows, scale).save(args.out / "yaw_sweep.png")
    light_rows = [
        [
            model.render(faces, light=[0.6, 0.9, math.tan(math.radians(angle)), 0.0]).to_pil()[index]
            for angle in LIGHT_ANGLES
        ]
        for index in range(4)
    ]
    grid(light_rows, scale).save(args.out / "relight_sweep.png")
    frames = [
        frame.resize((frame.width * scale, frame.height * scale), Image.BILINEAR)
        for frame in model.rotation_frames(output, range(-40, 41, 4))
    ]
    save_animation(frames + frames[-2:0:-1], args.out / "rotation.gif", fps=12)
    print(f"wrote {', '.join(sorted(path.name for path in args.out.iterdir()))} to {args.out}")


if __name__ == "__main__":
    main()
