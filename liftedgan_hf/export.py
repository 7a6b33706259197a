"""Turning model outputs into files: images, depth/normal visualisations, meshes and animations."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

MESH_SUFFIXES = (".glb", ".obj", ".ply")
ANIMATION_SUFFIXES = (".gif", ".mp4")


def tensor_to_pil(images: torch.Tensor) -> list[Image.Image]:
    """Convert images (B, C, H, W) in [-1, 1] (C = 1 or 3) to a list of 8-bit PIL images.

    Values outside [-1, 1] are clipped.
    """
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images of shape (B, 1|3, H, W), got {tuple(images.shape)}")
    array = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    array = array.permute(0, 2, 3, 1).cpu().numpy()
    mode = "L" if array.shape[-1] == 1 else "RGB"
    return [Image.fromarray(item[..., 0] if mode == "L" else item, mode) for item in array]


def depth_to_image(depth: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Visualise depth (B, H, W) as grey images (B, 1, H, W) in [-1, 1]: near is bright.

    Each image is stretched to its own range over ``mask`` (B, H, W) bool (all pixels when None);
    pixels outside the mask are black.
    """
    if depth.dim() != 3:
        raise ValueError(f"expected depth of shape (B, H, W), got {tuple(depth.shape)}")
    if mask is None:
        mask = torch.ones_like(depth, dtype=torch.bool)
    big = torch.finfo(depth.dtype).max
    near = torch.where(mask, depth, torch.full_like(depth, big)).flatten(1).amin(1).view(-1, 1, 1)
    far = torch.where(mask, depth, torch.full_like(depth, -big)).flatten(1).amax(1).view(-1, 1, 1)
    closeness = (far - depth) / (far - near).clamp(min=1e-8)
    closeness = torch.where(mask, closeness, torch.zeros_like(closeness))
    return (closeness * 2 - 1).unsqueeze(1)


def normal_to_image(normal: torch.Tensor) -> torch.Tensor:
    """Visualise unit normals (B, 3, H, W) as RGB images in [-1, 1] (the usual normal-map colours).

    The renderer's normals point away from the camera in a y-down frame; they are turned into
    outward normals in the usual y-up frame of normal maps, so a surface facing the viewer is light
    blue and one turned to the right is pink.
    """
    if normal.dim() != 4 or normal.shape[1] != 3:
        raise ValueError(f"expected normals of shape (B, 3, H, W), got {tuple(normal.shape)}")
    return normal * torch.tensor([-1.0, 1.0, 1.0], device=normal.device, dtype=normal.dtype).view(1, 3, 1, 1)


def _check_suffix(path: str | os.PathLike, allowed: Sequence[str], what: str) -> Path:
    path = Path(path)
    if path.suffix.lower() not in allowed:
        raise ValueError(f"cannot write {what} to {path}: the suffix must be one of {', '.join(allowed)}")
    return path


def write_atomically(path: Path, write) -> None:
    """Call ``write(temporary_path)`` and move the result into place, so no half file is left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def save_mesh(
    path: str | os.PathLike,
    vertices: torch.Tensor,
    faces: torch.Tensor,
    vertex_colors: torch.Tensor,
) -> Path:
    """Write a vertex-coloured triangle mesh as GLB, OBJ or PLY (chosen by the suffix).

    Args:
        vertices: (N, 3) positions in the camera frame of the renderer (x right, y down, z forward).
            They are written in the usual y-up, z-towards-viewer frame of mesh viewers.
        faces: (F, 3) vertex indices.
        vertex_colors: (N, 3) RGB in [0, 1].
    """
    import trimesh

    path = _check_suffix(path, MESH_SUFFIXES, "a mesh")
    if vertices.dim() != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must be (N, 3), got {tuple(vertices.shape)}")
    if faces.dim() != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must be (F, 3), got {tuple(faces.shape)}")
    if vertex_colors.shape != vertices.shape:
        raise ValueError(f"vertex_colors must be (N, 3) like vertices, got {tuple(vertex_colors.shape)}")
    if not torch.isfinite(vertices).all():
        raise ValueError("vertices contain NaN or infinite values")
    positions = vertices.detach().double().cpu().numpy() * np.array([1.0, -1.0, -1.0])
    colors = (vertex_colors.detach().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    alpha = np.full((colors.shape[0], 1), 255, dtype=np.uint8)
    mesh = trimesh.Trimesh(
        vertices=positions,
        faces=faces.detach().cpu().numpy(),
        vertex_colors=np.concatenate([colors, alpha], axis=1),
        process=False,
    )
    write_atomically(path, lambda temporary: mesh.export(temporary, file_type=path.suffix[1:].lower()))
    return path


def save_animation(frames: Sequence[Image.Image], path: str | os.PathLike, fps: float = 15.0) -> Path:
    """Write PIL frames as an animated GIF (looping) or an H.264 MP4, chosen by the suffix."""
    path = _check_suffix(path, ANIMATION_SUFFIXES, "an animation")
    if len(frames) == 0:
        raise ValueError("an animation needs at least one frame")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if path.suffix.lower() == ".gif":

        def write(temporary: str) -> None:
            frames[0].save(
                temporary,
                format="GIF",
                save_all=True,
                append_images=list(frames[1:]),
                duration=round(1000 / fps),
                loop=0,
            )

    else:

        def write(temporary: str) -> None:
            import imageio_ffmpeg

            width, height = frames[0].size
            # H.264 in yuv420p needs even sizes; the frames are padded by one pixel when odd.
            even = (width + width % 2, height + height % 2)
            writer = imageio_ffmpeg.write_frames(
                temporary, even, fps=fps, codec="libx264", pix_fmt_out="yuv420p", macro_block_size=1
            )
            writer.send(None)
            for frame in frames:
                canvas = Image.new("RGB", even)
                canvas.paste(frame.convert("RGB"))
                writer.send(np.ascontiguousarray(np.asarray(canvas)))
            writer.close()

    write_atomically(path, write)
    return path
