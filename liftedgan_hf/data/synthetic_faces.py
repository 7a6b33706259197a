"""Procedural, left-right symmetric 3D faces with exact ground truth, rendered by the project's renderer.

Each face is built on LiftedGAN's canonical frontal grid: a depth map (head, forehead and brow ridge,
eye sockets and eyes, nose ridge and tip, cheeks, lips, chin, hair volume; the background at the
border depth) and an albedo (skin, hair, brows, eyes, lips, background), both from an identity drawn
from the seed. It is shaded like LiftedGAN (ambient + diffuse Lambertian light) and rendered from a
random view: yaw U(-40, 40), pitch U(-15, 15) degrees, roll 0.

    python -m liftedgan_hf.data.synthetic_faces --num 1000 --resolution 64 --out faces/

writes ``faces/images/00000000.png ...`` and ``faces/ground_truth.safetensors`` (canonical depth,
albedo, rendered depth, rotation, light and seed of every image).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..export import tensor_to_pil
from ..models.filters import gaussian_blur
from ..rendering import Renderer, apply_shading, lambertian_shading

MIN_DEPTH, MAX_DEPTH, BORDER_DEPTH = 0.9, 1.1, 1.05
YAW_RANGE, PITCH_RANGE = 40.0, 15.0


@dataclass
class SyntheticFace:
    """One sample. Shapes for resolution S: ``image``, ``albedo`` (3, S, S) in [-1, 1];
    ``canonical_depth``, ``rendered_depth`` (S, S); ``rotation`` (3,) degrees (pitch, yaw, roll);
    ``light`` (4,) [ambient, diffuse, dx, dy]; ``mask`` (S, S) bool, the face in canonical view."""

    image: torch.Tensor
    albedo: torch.Tensor
    canonical_depth: torch.Tensor
    rendered_depth: torch.Tensor
    rotation: torch.Tensor
    light: torch.Tensor
    mask: torch.Tensor
    seed: int


def _bump(u, v, centre_u, centre_v, width, height):
    """A Gaussian bump on the grid, mirrored so that the face stays symmetric (u -> |u|)."""
    return torch.exp(-(((u.abs() - centre_u) / width) ** 2) - ((v - centre_v) / height) ** 2)


def canonical_face(seed: int, resolution: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Canonical depth (S, S) in [MIN_DEPTH, BORDER_DEPTH], albedo (3, S, S) in [-1, 1] and face mask
    (S, S) of the identity drawn from ``seed``; symmetric under a horizontal flip."""
    rng = torch.Generator().manual_seed(seed)

    def uniform(low, high, size=()):
        return low + (high - low) * torch.rand(size, generator=rng)

    coordinates = torch.linspace(-1, 1, resolution)
    v, u = torch.meshgrid(coordinates, coordinates, indexing="ij")  # v down, u right

    # identity: proportions
    head_width, head_height, head_centre = uniform(0.52, 0.68), uniform(0.66, 0.80), uniform(-0.02, 0.06)
    eye_u, eye_v = uniform(0.2, 0.3), uniform(-0.12, 0.0)
    nose_length, mouth_v, chin_v = uniform(0.22, 0.32), uniform(0.33, 0.43), uniform(0.58, 0.68)
    relief = uniform(0.8, 1.2)

    radius = (u / head_width) ** 2 + ((v - head_centre) / head_height) ** 2
    head = (1 - radius).clamp(min=0) ** 0.75
    mask = radius < 1
    height = 0.055 * head
    height += (
        relief
        * (
            0.012 * _bump(u, v, 0.0, eye_v - 0.22, 0.35, 0.08)  # forehead and brow ridge
            - 0.012 * _bump(u, v, eye_u, eye_v, 0.11, 0.07)  # eye sockets
            + 0.006 * _bump(u, v, eye_u, eye_v, 0.05, 0.04)  # eyeballs
            + 0.020 * _bump(u, v, 0.0, eye_v + nose_length / 2, 0.05, nose_length / 2)  # nose ridge
            + 0.012 * _bump(u, v, 0.0, eye_v + nose_length, 0.07, 0.05)  # nose tip
            + 0.008 * _bump(u, v, eye_u + 0.05, eye_v + 0.25, 0.13, 0.12)  # cheeks
            + 0.005 * _bump(u, v, 0.0, mouth_v, 0.12, 0.035)  # lips
            + 0.008 * _bump(u, v, 0.0, chin_v, 0.12, 0.07)  # chin
        )
        * mask
    )
    hairline = head_centre - head_height * uniform(0.35, 0.55)
    hair = mask & ((v < hairline + 0.25 * u.abs() ** 2) | (u.abs() > head_width * uniform(0.82, 0.95)))
    height += 0.01 * uniform(0.3, 1.0) * hair * head
    depth = BORDER_DEPTH - height
    # smooth, so the surface has no cliffs (the head's outline stays a steep slope)
    depth = gaussian_blur(depth[None, None], radius=max(1, resolution // 64), sigma=resolution / 256)[0, 0]
    depth = depth.clamp(MIN_DEPTH, BORDER_DEPTH)
    depth[:, :2] = BORDER_DEPTH
    depth[:, -2:] = BORDER_DEPTH

    # identity: colours
    skin = torch.tensor([0.95, 0.75, 0.62]) * uniform(0.45, 1.0) + uniform(-0.05, 0.05, (3,))
    natural_hair = torch.tensor(
        [[0.1, 0.08, 0.07], [0.35, 0.22, 0.12], [0.75, 0.62, 0.38], [0.6, 0.28, 0.12], [0.6, 0.6, 0.6]]
    )
    hair_colour = natural_hair[int(torch.randint(len(natural_hair), (), generator=rng))] * uniform(0.8, 1.2)
    iris = torch.rand(3, generator=rng) * 0.6
    lips = skin * torch.tensor([1.05, 0.6, 0.6])
    background = torch.rand(3, generator=rng) * 0.5 + 0.3
    albedo = torch.where(mask, 1.0, 0.0) * skin.view(3, 1, 1) + torch.where(mask, 0.0, 1.0) * background.view(3, 1, 1)
    colour_regions = [
        (_bump(u, v, 0.0, mouth_v, 0.11, 0.025) > 0.5, lips),
        (_bump(u, v, eye_u, eye_v - 0.09, 0.09, 0.02) > 0.5, hair_colour * 0.6),  # brows
        (_bump(u, v, eye_u, eye_v, 0.07, 0.035) > 0.5, torch.tensor([0.95, 0.95, 0.92])),  # eye whites
        (_bump(u, v, eye_u, eye_v, 0.03, 0.03) > 0.5, iris),
        (hair, hair_colour),
    ]
    for region, colour in colour_regions:
        albedo = torch.where(region & mask, colour.view(3, 1, 1), albedo)
    albedo = albedo.clamp(0, 1) * 2 - 1
    return depth, albedo, mask


def sample_view_and_light(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotation (3,) degrees (pitch U(-15, 15), yaw U(-40, 40), roll 0) and light
    [ambient U(0.3, 0.7), diffuse U(0.3, 0.8), dx, dy U(-0.7, 0.7)] for ``seed``."""
    rng = torch.Generator().manual_seed(seed * 2 + 1)
    unit = torch.rand(6, generator=rng)
    rotation = torch.tensor([(unit[0] * 2 - 1) * PITCH_RANGE, (unit[1] * 2 - 1) * YAW_RANGE, 0.0])
    light = torch.stack([0.3 + 0.4 * unit[2], 0.3 + 0.5 * unit[3], (unit[4] * 2 - 1) * 0.7, (unit[5] * 2 - 1) * 0.7])
    return rotation, light


def transformation_map(mask: torch.Tensor) -> torch.Tensor:
    """LiftedGAN's construction: 1 on the face, blurred, the outer frame still: (1, 1, S, S)."""
    resolution = mask.shape[-1]
    blurred = gaussian_blur(mask.float()[None, None], radius=max(1, resolution * 10 // 256), sigma=resolution / 64)
    frame = torch.zeros_like(blurred)
    frame[..., 1:-1, 2:-2] = 1
    return blurred * frame


def render_face(
    depth: torch.Tensor, albedo: torch.Tensor, mask: torch.Tensor, rotation: torch.Tensor, light: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shade and render a canonical face: image (3, S, S) in [-1, 1] and rendered depth (S, S)."""
    renderer = Renderer(depth.shape[-1], min_depth=MIN_DEPTH, max_depth=MAX_DEPTH)
    normal = renderer.normals(depth[None], unit=False)
    direction = torch.cat([light[2:], torch.ones(1)])[None]
    shading = lambertian_shading(normal, light[:1], light[1:2], direction)
    texture = apply_shading(albedo[None], shading)
    output = renderer.render(depth[None], texture, rotation[None], torch.zeros(1, 3), transformation_map(mask))
    return output.image[0].clamp(-1, 1), output.depth[0]


def synthesize(seed: int, resolution: int = 64) -> SyntheticFace:
    """The face of ``seed``: identity, view and light all follow from it (deterministic)."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if resolution < 16 or resolution & (resolution - 1):
        raise ValueError(f"resolution must be a power of two >= 16, got {resolution}")
    depth, albedo, mask = canonical_face(seed, resolution)
    rotation, light = sample_view_and_light(seed)
    image, rendered_depth = render_face(depth, albedo, mask, rotation, light)
    return SyntheticFace(image, albedo, depth, rendered_depth, rotation, light, mask, seed)


def write_dataset(out: str | os.PathLike, num: int, resolution: int, first_seed: int = 0) -> Path:
    """Write ``num`` faces (seeds ``first_seed ...``) as PNGs plus one ground-truth file; resumable:
    images already on disk are kept and the ground truth is written at the end, atomically."""
    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    out = Path(out)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    fields = {name: [] for name in ("canonical_depth", "rendered_depth", "albedo", "rotation", "light", "seed")}
    for seed in tqdm(range(first_seed, first_seed + num), desc="synthetic faces", unit="face"):
        face = synthesize(seed, resolution)
        path = images / f"{seed:08d}.png"
        if not path.exists():
            temporary = path.with_suffix(".tmp.png")
            tensor_to_pil(face.image[None])[0].save(temporary)
            os.replace(temporary, path)
        fields["canonical_depth"].append(face.canonical_depth.half())
        fields["rendered_depth"].append(face.rendered_depth.half())
        fields["albedo"].append(((face.albedo + 1) * 127.5).round().to(torch.uint8))
        fields["rotation"].append(face.rotation)
        fields["light"].append(face.light)
        fields["seed"].append(torch.tensor(seed))
    from safetensors.torch import save_file

    tensors = {name: torch.stack(values).contiguous() for name, values in fields.items()}
    temporary = out / ".ground_truth.safetensors.tmp"
    save_file(tensors, str(temporary), metadata={"resolution": str(resolution), "format": json.dumps(_FORMAT)})
    os.replace(temporary, out / "ground_truth.safetensors")
    return out


_FORMAT = {
    "canonical_depth": "(N, S, S) float16, canonical (frontal) depth in [0.9, 1.05]",
    "rendered_depth": "(N, S, S) float16, depth seen in the image (1.2 where empty)",
    "albedo": "(N, 3, S, S) uint8 RGB albedo",
    "rotation": "(N, 3) degrees, pitch, yaw, roll",
    "light": "(N, 4) ambient, diffuse, dx, dy",
    "seed": "(N,) seed of each image (images/<seed:08d>.png)",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m liftedgan_hf.data.synthetic_faces", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--num", type=int, required=True, help="number of faces")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the first face (held-out sets use others)")
    args = parser.parse_args(argv)
    try:
        write_dataset(args.out, args.num, args.resolution, args.first_seed)
    except ValueError as error:
        parser.error(str(error))
    print(f"wrote {args.num} faces to {args.out}")


if __name__ == "__main__":
    main()
