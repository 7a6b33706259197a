"""Camera and geometry: intrinsics, rotations in degrees, lifting depth maps to points, grid meshes.

Conventions (those of the official LiftedGAN renderer): the camera sits at the origin looking down
+z, image x to the right and y down. For an S x S image, f = (S - 1) / 2 / tan(fov / 2) and the
principal point is ((S - 1) / 2, (S - 1) / 2), so pixel centres have integer coordinates. A pixel
(u, v) with depth d is the 3D point d * K^-1 (u, v, 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PerspectiveCamera:
    """A square pinhole camera: ``image_size`` pixels, field of view ``fov`` degrees."""

    image_size: int
    fov: float = 10.0

    def __post_init__(self):
        if self.image_size < 2:
            raise ValueError(f"image_size must be >= 2, got {self.image_size}")
        if not 0 < self.fov < 180:
            raise ValueError(f"fov must be in (0, 180) degrees, got {self.fov}")

    @property
    def focal(self) -> float:
        return (self.image_size - 1) / 2 / math.tan(math.radians(self.fov) / 2)

    @property
    def principal_point(self) -> float:
        return (self.image_size - 1) / 2

    def intrinsics(self, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
        """K (3, 3)."""
        focal, centre = self.focal, self.principal_point
        return torch.tensor([[focal, 0, centre], [0, focal, centre], [0, 0, 1]], dtype=dtype, device=device)

    def unproject(self, depth: torch.Tensor) -> torch.Tensor:
        """Depth maps (B, H, W) -> camera-space points (B, H, W, 3): d * K^-1 (u, v, 1)."""
        height, width = depth.shape[-2:]
        rows = torch.arange(height, dtype=depth.dtype, device=depth.device)
        cols = torch.arange(width, dtype=depth.dtype, device=depth.device)
        x = ((cols - self.principal_point) / self.focal).view(1, 1, width).expand_as(depth)
        y = ((rows - self.principal_point) / self.focal).view(1, height, 1).expand_as(depth)
        return torch.stack([x * depth, y * depth, depth], dim=-1)

    def project(self, points: torch.Tensor) -> torch.Tensor:
        """Camera-space points (..., 3) -> pixel coordinates (..., 2) (u right, v down)."""
        return points[..., :2] / points[..., 2:3] * self.focal + self.principal_point


def rotation_matrix(rotation_degrees: torch.Tensor) -> torch.Tensor:
    """(B, 3) angles in degrees (pitch about x, yaw about y, roll about z) -> R = Rz @ Ry @ Rx (B, 3, 3)."""
    radians = torch.deg2rad(rotation_degrees)
    cos, sin = torch.cos(radians), torch.sin(radians)
    one, zero = torch.ones_like(cos[:, 0]), torch.zeros_like(cos[:, 0])

    def matrix(rows):
        return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)

    rx = matrix([[one, zero, zero], [zero, cos[:, 0], -sin[:, 0]], [zero, sin[:, 0], cos[:, 0]]])
    ry = matrix([[cos[:, 1], zero, sin[:, 1]], [zero, one, zero], [-sin[:, 1], zero, cos[:, 1]]])
    rz = matrix([[cos[:, 2], -sin[:, 2], zero], [sin[:, 2], cos[:, 2], zero], [zero, zero, one]])
    return rz @ ry @ rx


def transform_points(
    points: torch.Tensor,
    rotation_degrees: torch.Tensor,
    translation: torch.Tensor,
    rotation_center_depth: float = 1.0,
) -> torch.Tensor:
    """Rotate points (B, ..., 3) about (0, 0, rotation_center_depth), then add ``translation`` (B, 3)."""
    batch = points.shape[0]
    flat = points.reshape(batch, -1, 3)
    centre = flat.new_tensor([0.0, 0.0, rotation_center_depth])
    rotated = (flat - centre) @ rotation_matrix(rotation_degrees).transpose(1, 2) + centre
    return (rotated + translation[:, None, :]).reshape(points.shape)


def grid_faces(height: int, width: int, device=None) -> torch.Tensor:
    """Triangles (F, 3) of a height x width vertex grid: two per quad, F = 2 (H - 1)(W - 1).

    Vertex (r, c) has index r * width + c; each quad is split along its (r + 1, c)-(r, c + 1)
    diagonal, as in the official renderer.
    """
    index = torch.arange(height * width, device=device).view(height, width)
    top_left, top_right = index[:-1, :-1], index[:-1, 1:]
    bottom_left, bottom_right = index[1:, :-1], index[1:, 1:]
    first = torch.stack([top_left, bottom_left, top_right], dim=-1).reshape(-1, 3)
    second = torch.stack([top_right, bottom_left, bottom_right], dim=-1).reshape(-1, 3)
    return torch.cat([first, second])


def grid_face_values(values: torch.Tensor) -> torch.Tensor:
    """Per-vertex values on a grid (B, H, W, C) -> per-face corner values (B, F, 3, C), in the order of
    :func:`grid_faces`; equal to ``values.reshape(B, -1, C)[:, grid_faces(H, W)]`` without a gather."""
    batch, channels = values.shape[0], values.shape[-1]
    top_left, top_right = values[:, :-1, :-1], values[:, :-1, 1:]
    bottom_left, bottom_right = values[:, 1:, :-1], values[:, 1:, 1:]
    first = torch.stack([top_left, bottom_left, top_right], dim=3).reshape(batch, -1, 3, channels)
    second = torch.stack([top_right, bottom_left, bottom_right], dim=3).reshape(batch, -1, 3, channels)
    return torch.cat([first, second], dim=1)
