"""3D accuracy of a LiftedGAN on held-out synthetic faces with exact ground truth.

    python -m liftedgan_hf.evaluate --model DIR --data HELD_OUT_DIR [--ablation DIR] [--num 200]

``HELD_OUT_DIR`` is written by ``python -m liftedgan_hf.data.synthetic_faces`` with seeds never used
in training. Each image is inverted to a teacher style code, lifted, and compared with its ground
truth, following the paper's protocol:

- yaw and pitch error (degrees): mean absolute error after removing the mean offset;
- depth error: canonical depths normalised by their mean and standard deviation over the face, root
  mean square difference on the overlap of the true and predicted face masks;
- PSNR of the render against the input image.

Baselines in the same run: a flat depth map and the mean true face depth of the set.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file
from tqdm.auto import tqdm

from .data.synthetic_faces import BORDER_DEPTH
from .inversion import invert
from .pipeline import LiftedGAN


@dataclass
class HeldOutSet:
    """Images (N, 3, S, S) in [-1, 1] and their ground truth (see ``synthetic_faces``)."""

    images: torch.Tensor
    depth: torch.Tensor
    rotation: torch.Tensor

    @classmethod
    def load(cls, folder: str | Path, num: int | None = None) -> HeldOutSet:
        folder = Path(folder)
        truth_path = folder / "ground_truth.safetensors"
        if not truth_path.is_file():
            raise FileNotFoundError(
                f"{truth_path} not found: write the set with python -m liftedgan_hf.data.synthetic_faces"
            )
        truth = load_file(str(truth_path))
        count = len(truth["seed"]) if num is None else min(num, len(truth["seed"]))
        images = []
        for seed in truth["seed"][:count].tolist():
            with Image.open(folder / "images" / f"{seed:08d}.png") as picture:
                array = np.asarray(picture.convert("RGB"), dtype=np.float32)
            images.append(torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1)
        return cls(torch.stack(images), truth["canonical_depth"][:count].float(), truth["rotation"][:count])


def normalised_depth(depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(depth - mean) / std over ``mask`` per map (B, S, S); a constant map normalises to zeros."""
    count = mask.sum((1, 2), keepdim=True).clamp(min=1)
    mean = (depth * mask).sum((1, 2), keepdim=True) / count
    std = (((depth - mean) ** 2 * mask).sum((1, 2), keepdim=True) / count).sqrt()
    return torch.where(std > 1e-8, (depth - mean) / std.clamp(min=1e-8), torch.zeros_like(depth)) * mask


def depth_error(
    predicted: torch.Tensor, truth: torch.Tensor, predicted_mask: torch.Tensor, true_mask: torch.Tensor
) -> torch.Tensor:
    """Per-face RMS difference of normalised depths on the overlap of the two masks (B,)."""
    overlap = predicted_mask & true_mask
    difference = normalised_depth(predicted, overlap) - normalised_depth(truth, overlap)
    return (difference.pow(2).sum((1, 2)) / overlap.sum((1, 2)).clamp(min=1)).sqrt()


def angle_error(predicted: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean absolute error in degrees after removing the mean offset."""
    difference = predicted - truth
    return (difference - difference.mean()).abs().mean().item()


def invert_images(model: LiftedGAN, images: torch.Tensor, steps: int, batch_size: int = 16) -> torch.Tensor:
    """Teacher style codes (N, style_dim) of ``images`` (N, 3, S, S), ``batch_size`` at a time."""
    codes = [
        invert(model, images[start : start + batch_size], steps=steps)
        for start in tqdm(range(0, len(images), batch_size), desc="invert", unit="batch")
    ]
    return torch.cat(codes)


def same_teacher(first: LiftedGAN, second: LiftedGAN) -> bool:
    """True when both models hold identical teacher weights and mean w, so inversions can be shared."""
    first_state, second_state = first.generator.state_dict(), second.generator.state_dict()
    return (
        first_state.keys() == second_state.keys()
        and all(torch.equal(first_state[key], second_state[key]) for key in first_state)
        and torch.equal(first.w_mean, second.w_mean)
    )


@torch.no_grad()
def evaluate(
    model: LiftedGAN,
    held_out: HeldOutSet,
    inversion_steps: int = 200,
    batch_size: int = 16,
    w: torch.Tensor | None = None,
) -> dict[str, float]:
    """Yaw/pitch error, depth error and reconstruction PSNR of ``model`` on ``held_out``.

    ``w`` (N, style_dim): the images' teacher style codes when already inverted (by
    :func:`invert_images` with this model's teacher); None inverts them here.
    """
    model.eval()
    if w is None:
        with torch.enable_grad():
            w = invert_images(model, held_out.images, inversion_steps, batch_size)
    outputs = [model.generate(w=codes) for codes in w.split(batch_size)]
    rotation = torch.cat([output.rotation for output in outputs])
    depth = torch.cat([output.depth for output in outputs])
    rendered = torch.cat([output.image for output in outputs]).clamp(-1, 1)
    squared_error = (rendered - held_out.images).pow(2).flatten(1).mean(1)
    psnr = 10 * torch.log10(4 / squared_error.clamp(min=1e-10))
    true_mask = held_out.depth < BORDER_DEPTH - 1e-3
    predicted_mask = depth < model.config.border_depth - 0.01
    return {
        "yaw_error": angle_error(rotation[:, 1], held_out.rotation[:, 1]),
        "pitch_error": angle_error(rotation[:, 0], held_out.rotation[:, 0]),
        "depth_error": depth_error(depth, held_out.depth, predicted_mask, true_mask).mean().item(),
        "psnr": psnr.mean().item(),
    }


def baselines(held_out: HeldOutSet) -> dict[str, float]:
    """Depth error of a flat map and of the set's mean true depth (masks: the true face masks)."""
    true_mask = held_out.depth < BORDER_DEPTH - 1e-3
    flat = torch.ones_like(held_out.depth)
    mean_face = held_out.depth.mean(0, keepdim=True).expand_as(held_out.depth)
    return {
        "flat_depth_error": depth_error(flat, held_out.depth, true_mask, true_mask).mean().item(),
        "mean_face_depth_error": depth_error(mean_face, held_out.depth, true_mask, true_mask).mean().item(),
    }


def format_table(rows: dict[str, dict[str, float]]) -> str:
    lines = ["| model | yaw error (deg) | pitch error (deg) | depth error | PSNR (dB) |", "|---|---:|---:|---:|---:|"]
    for name, metrics in rows.items():
        cells = [
            f"{metrics[key]:.2f}" if key in metrics else "-"
            for key in ("yaw_error", "pitch_error", "depth_error", "psnr")
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m liftedgan_hf.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument(
        "--data", required=True, help="held-out synthetic faces (python -m liftedgan_hf.data.synthetic_faces)"
    )
    parser.add_argument("--ablation", default=None, help="a model trained without the flip and perturbation losses")
    parser.add_argument("--num", type=int, default=200)
    parser.add_argument("--inversion-steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    try:
        held_out = HeldOutSet.load(args.data, args.num)
        models = {"LiftedGAN": LiftedGAN.from_pretrained(args.model)}
        if args.ablation:
            models["ablation (no flip, no perturbation)"] = LiftedGAN.from_pretrained(args.ablation)
    except (OSError, ValueError) as error:
        parser.exit(2, f"error: {error}\n")
    first = models["LiftedGAN"]
    with torch.enable_grad():
        codes = invert_images(first, held_out.images, args.inversion_steps, args.batch_size)
    rows = {
        name: evaluate(
            model, held_out, args.inversion_steps, args.batch_size, codes if same_teacher(model, first) else None
        )
        for name, model in models.items()
    }
    reference = baselines(held_out)
    rows["flat depth"] = {"depth_error": reference["flat_depth_error"]}
    rows["mean true face depth"] = {"depth_error": reference["mean_face_depth_error"]}
    print(f"{len(held_out.images)} held-out faces, {args.inversion_steps} inversion steps\n")
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
