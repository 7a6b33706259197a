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

    def rays(self, height: int, width: int, dtype: torch.dtype = torch.float32, device=None):
        """K^-1 (u, v, 1) of the pixel centres as x (1, 1, W) and y (1, H, 1); z is 1."""
        rows = torch.arange(height, dtype=dtype, device=device)
        cols = torch.arange(width, dtype=dtype, device=device)
        return (
            ((cols - self.principal_point) / self.focal).view(1, 1, width),
            ((rows - self.principal_point) / self.focal).view(1, height, 1),
        )

    def unproject(self, depth: torch.Tensor) -> torch.Tensor:
        """Depth maps (B, H, W) -> camera-space points (B, H, W, 3): d * K^-1 (u, v, 1)."""
        x, y = self.rays(*depth.shape[-2:], dtype=depth.dtype, device=depth.device)
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


def transform_components(
    x: torch.Tensor,
    y: torch.Tensor,
    z: torch.Tensor,
    rotation_degrees: torch.Tensor,
    translation: torch.Tensor,
    rotation_center_depth: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`transform_points` on coordinates kept apart, each (B, ...): element-wise work on whole
    images, much faster on a CPU than small 3 x 3 matrix products per point."""
    matrix = rotation_matrix(rotation_degrees).to(x.dtype)
    matrix = matrix.view(*matrix.shape, *[1] * (x.dim() - 1))
    translation = translation.to(x.dtype).view(*translation.shape, *[1] * (x.dim() - 1))
    centred_z = z - rotation_center_depth
    moved = [matrix[:, row, 0] * x + matrix[:, row, 1] * y + matrix[:, row, 2] * centred_z for row in range(3)]
    return (
        moved[0] + translation[:, 0],
        moved[1] + translation[:, 1],
        moved[2] + (rotation_center_depth + translation[:, 2]),
    )


def transform_points(
    points: torch.Tensor,
    rotation_degrees: torch.Tensor,
    translation: torch.Tensor,
    rotation_center_depth: float = 1.0,
) -> torch.Tensor:
    """Rotate points (B, ..., 3) about (0, 0, rotation_center_depth), then add ``translation`` (B, 3)."""
    moved = transform_components(*points.unbind(-1), rotation_degrees, translation, rotation_center_depth)
    return torch.stack(moved, dim=-1)


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


def grid_face_corners(values: torch.Tensor) -> torch.Tensor:
    """A per-vertex quantity on a grid (B, H, W) -> its value at each face corner (3, B, F), in the
    order of :func:`grid_faces` (equal to ``values.reshape(B, -1)[:, grid_faces(H, W)].permute(2, 0, 1)``),
    built from slices without a gather; the vertex-major layout the rasteriser works in."""
    batch = values.shape[0]
    top_left, top_right = values[:, :-1, :-1], values[:, :-1, 1:]
    bottom_left, bottom_right = values[:, 1:, :-1], values[:, 1:, 1:]
    corners = torch.empty(3, batch, 2, *top_left.shape[1:], dtype=values.dtype, device=values.device)
    for corner, (first, second) in enumerate(
        ((top_left, top_right), (bottom_left, bottom_left), (top_right, bottom_right))
    ):
        corners[corner, :, 0] = first
        corners[corner, :, 1] = second
    return corners.view(3, batch, -1)
