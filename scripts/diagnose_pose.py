"""Where a lifted model's angle errors come from: the teacher, the inversion or the lifting.

    python scripts/diagnose_pose.py --data demo_work/data --held-out demo_work/held_out \\
        [--model demo_work/lift] [--teacher demo_work/teacher]

Trains a small CNN to read (pitch, yaw) from images, supervised by the synthetic training set's ground
truth, and uses it as an independent judge of pose:

- on the held-out images, how well it reads pose at all (its slope against the truth);
- on the teacher's own samples, how widely the teacher spreads pitch and yaw, against the held-out set;
- with ``--model``, on the teacher's re-syntheses of the inverted held-out images, how much pose the
  teacher keeps, and how D_V's angles compare with the regressor's there and on the teacher's samples;
- with ``--model``, on the manipulation M(w, light, view) of the teacher's samples to random views:
  how much of the requested turn the teacher's image of M's code shows, how much D_V reads back (the
  light/view cycle), and how far from the mean w M's codes lie against the samples' own.

A slope is the least-squares slope of the second quantity on the first (1 is perfect calibration).
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import torch
from torch import nn

from liftedgan_hf import LiftedGAN, StyleGAN2Generator
from liftedgan_hf.evaluate import HeldOutSet, invert_images
from liftedgan_hf.export import write_atomically
from liftedgan_hf.losses import sample_perturbation

ANGLES = ("pitch", "yaw")  # the columns of a rotation (B, 3) that the regressor reads
DEGREES_SCALE = 20.0  # regression targets in units of 20 degrees, about one standard deviation


def pose_regressor() -> nn.Sequential:
    """Images (N, 3, S, S) in [-1, 1], S >= 16 -> (pitch, yaw) / DEGREES_SCALE (N, 2)."""
    layers: list[nn.Module] = []
    for in_channels, out_channels in ((3, 32), (32, 64), (64, 128), (128, 128)):
        layers += [nn.Conv2d(in_channels, out_channels, 3, 2, 1), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128 * 16, 2))


def train_regressor(images: torch.Tensor, rotation: torch.Tensor, epochs: int, seed: int = 0) -> nn.Sequential:
    """Fit :func:`pose_regressor` to images (N, 3, S, S) and their rotation (N, 3) degrees by L1."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    network = pose_regressor()
    batches_per_epoch = -(-len(images) // 64)
    optimizer = torch.optim.Adam(network.parameters(), 1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * batches_per_epoch)
    target = rotation[:, :2] / DEGREES_SCALE
    for _ in range(epochs):
        for batch in torch.randperm(len(images), generator=generator).split(64):
            loss = (network(images[batch]) - target[batch]).abs().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return network.eval()


def load_or_train_regressor(path: Path | None, training_folder: str, epochs: int) -> nn.Sequential:
    """The regressor saved at ``path`` (a state dict) or, when there is none, one trained on the synthetic
    set in ``training_folder`` and saved there, so several teachers are judged by one regressor."""
    if path is not None and path.is_file():
        network = pose_regressor()
        try:
            network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except (RuntimeError, EOFError, pickle.UnpicklingError) as error:
            raise ValueError(f"{path} is not a pose regressor saved by this script: {error}") from error
        return network.eval()
    training = HeldOutSet.load(training_folder)
    network = train_regressor(training.images, training.rotation, epochs)
    if path is not None:
        write_atomically(path, lambda temporary: torch.save(network.state_dict(), temporary))
    return network


@torch.no_grad()
def read_pose(network: nn.Sequential, images: torch.Tensor) -> torch.Tensor:
    """(pitch, yaw) in degrees (N, 2) of images (N, 3, S, S)."""
    return torch.cat([network(chunk) for chunk in images.split(256)]) * DEGREES_SCALE


def slope(reference: torch.Tensor, value: torch.Tensor) -> float:
    reference, value = reference - reference.mean(), value - value.mean()
    return ((reference * value).sum() / (reference * reference).sum()).item()


def correlation(first: torch.Tensor, second: torch.Tensor) -> float:
    return torch.corrcoef(torch.stack([first, second]))[0, 1].item()


@torch.no_grad()
def teacher_samples(teacher: StyleGAN2Generator, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` untruncated style codes (count, style_dim) and their images."""
    z = torch.randn(count, teacher.config.style_dim, generator=torch.Generator().manual_seed(seed))
    styles = teacher.mapping(z)
    return styles, synthesize(teacher, styles)


@torch.no_grad()
def synthesize(teacher: StyleGAN2Generator, styles: torch.Tensor) -> torch.Tensor:
    """The teacher's images (N, 3, S, S) in [-1, 1] of style codes (N, style_dim), in chunks of 128."""
    return torch.cat([teacher.synthesis(chunk, noise_mode="const") for chunk in styles.split(128)]).clamp(-1, 1)


@torch.no_grad()
def manipulation_rows(model: LiftedGAN, styles: torch.Tensor, regressor: nn.Sequential, seed: int) -> list:
    """Turn each style code (N, style_dim) to a random view with M, as the perturbation losses do (pitch
    U(-10, 10), yaw U(-30, 30) degrees, the recipe's sideways shift), and compare the requested angles
    with what the regressor reads from the teacher's images of M's codes and with what D_V reads from
    the codes; also the mean distance of M's codes from the mean w, over the samples' own."""
    light, _ = model.style_decompose.light_and_view(styles)
    _, view, angles = sample_perturbation(
        light, torch.Generator().manual_seed(seed), 10.0, 30.0, model.config.rotation_range
    )
    manipulated = model.style_compose(styles, light, view)
    shown = read_pose(regressor, synthesize(model.generator, manipulated))
    read_back = model.style_decompose.light_and_view(manipulated)[1][:, :2] * model.config.rotation_range
    rows = []
    for column, name in enumerate(ANGLES):
        rows.append(
            (
                f"regressor on teacher images of M(w, view): {name} slope against the view",
                slope(angles[:, column], shown[:, column]),
            )
        )
        rows.append(
            (f"D_V on M(w, view): {name} slope against the view", slope(angles[:, column], read_back[:, column]))
        )
    spread = (manipulated - model.w_mean).norm(dim=1).mean() / (styles - model.w_mean).norm(dim=1).mean()
    rows.append(("distance of M's codes from the mean w, over the samples' own", spread.item()))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the synthetic training set (with ground_truth.safetensors)")
    parser.add_argument("--held-out", required=True, help="held-out synthetic faces")
    parser.add_argument("--model", default=None, help="a LiftedGAN; its D_V is judged on its own teacher's images")
    parser.add_argument("--teacher", default=None, help="a StyleGAN2Generator folder whose spread to report")
    parser.add_argument("--num-held-out", type=int, default=64, help="held-out faces to invert (with --model)")
    parser.add_argument("--inversion-steps", type=int, default=100)
    parser.add_argument("--samples", type=int, default=1024, help="teacher samples")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument(
        "--regressor", type=Path, default=None, help="regressor .pt file to load; trained and saved there if missing"
    )
    args = parser.parse_args()
    if args.model is None and args.teacher is None:
        parser.error("give --model, --teacher or both")
    try:
        held_out = HeldOutSet.load(args.held_out)
        model = LiftedGAN.from_pretrained(args.model).eval() if args.model else None
        teacher = StyleGAN2Generator.from_pretrained(args.teacher) if args.teacher else model.generator
        regressor = load_or_train_regressor(args.regressor, args.data, args.epochs)
    except (OSError, ValueError) as error:
        parser.exit(2, f"error: {error}\n")
    teacher.eval()

    held_out_pose = read_pose(regressor, held_out.images)
    styles, images = teacher_samples(teacher, args.samples, seed=12345)
    sample_pose = read_pose(regressor, images)
    rows = []
    for column, name in enumerate(ANGLES):
        truth = held_out.rotation[:, column]
        rows.append((f"regressor on held-out images: {name} slope", slope(truth, held_out_pose[:, column])))
        rows.append(
            (
                f"regressor on held-out images: {name} mean error (deg)",
                (held_out_pose[:, column] - truth).abs().mean().item(),
            )
        )
        rows.append(
            (f"{name} spread (std, deg) the regressor reads: held-out images", held_out_pose[:, column].std().item())
        )
        rows.append(
            (f"{name} spread (std, deg) the regressor reads: teacher samples", sample_pose[:, column].std().item())
        )
    if model is not None:
        count = min(args.num_held_out, len(held_out.images))
        with torch.enable_grad():
            codes = invert_images(model, held_out.images[:count], args.inversion_steps)
        with torch.no_grad():
            resynthesis = model.generator.synthesis(codes, noise_mode="const").clamp(-1, 1)
            predicted = torch.cat([model.generate(w=chunk).rotation for chunk in codes.split(64)])
        resynthesis_pose = read_pose(regressor, resynthesis)
        if teacher is not model.generator:  # D_V is compared on samples of its own teacher
            styles, images = teacher_samples(model.generator, args.samples, seed=12345)
            sample_pose = read_pose(regressor, images)
        with torch.no_grad():
            sample_predicted = torch.cat([model.generate(w=chunk).rotation for chunk in styles.split(64)])
        for column, name in enumerate(ANGLES):
            truth = held_out.rotation[:count, column]
            rows.append((f"D_V on inverted held-out: {name} slope against truth", slope(truth, predicted[:, column])))
            rows.append(
                (f"D_V on inverted held-out: {name} correlation with truth", correlation(truth, predicted[:, column]))
            )
            rows.append(
                (
                    f"regressor on teacher re-syntheses: {name} slope against truth",
                    slope(truth, resynthesis_pose[:, column]),
                )
            )
            rows.append(
                (
                    f"D_V against regressor, re-syntheses: {name} slope",
                    slope(resynthesis_pose[:, column], predicted[:, column]),
                )
            )
            rows.append(
                (
                    f"D_V against regressor, teacher samples: {name} slope",
                    slope(sample_pose[:, column], sample_predicted[:, column]),
                )
            )
        rows += manipulation_rows(model, styles, regressor, seed=54321)
    print("| measure | value |\n|---|---:|")
    for label, value in rows:
        print(f"| {label} | {value:.2f} |")


if __name__ == "__main__":
    main()
