"""LiftedGAN's renderer: a depth map as a grid mesh, moved by a view and a transformation map."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .camera import PerspectiveCamera, grid_face_corners, grid_faces, transform_components
from .rasterizer import Fragments, interpolate_attributes, interpolate_fragments_planar, visible_faces_planar
from .shading import OFFICIAL_NORMAL_EPSILON, depth_normals

BACKENDS = ("torch", "pytorch3d")


@dataclass
class RenderOutput:
    """Result of :meth:`Renderer.render`.

    Attributes:
        image: (B, C, S, S) interpolated vertex colours, ``background`` where no face is visible.
        depth: (B, S, S) camera-space depth of the visible surface, ``Renderer.empty_depth`` elsewhere.
        mask: (B, 1, S, S) 1.0 where a face covers the pixel centre, else 0.0.
    """

    image: torch.Tensor
    depth: torch.Tensor
    mask: torch.Tensor


class _ClipContourGradient(torch.autograd.Function):
    """Identity forward; backward zeroes the depth gradient on the contour of where it is non-zero."""

    @staticmethod
    def forward(ctx, depth):
        return depth.view_as(depth)

    @staticmethod
    def backward(ctx, grad_output):
        has_gradient = (grad_output.abs() > 0).to(grad_output.dtype)[:, None]
        kernel = grad_output.new_tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]]) / 4
        laplacian = F.conv2d(F.pad(has_gradient, (1, 1, 1, 1), mode="reflect"), kernel[None, None])
        return grad_output * (laplacian.abs() < 1e-5).to(grad_output.dtype)[:, 0]


def clip_contour_gradient(depth: torch.Tensor) -> torch.Tensor:
    """The official renderer gradient rule on a depth map (B, H, W): values pass unchanged; in the
    backward pass the gradient survives only where the Laplacian of the "has gradient" mask is zero,
    so the silhouette contour, where the hard rasteriser's gradient is unreliable, gets none."""
    return _ClipContourGradient.apply(depth)


def _check_finite(name: str, value: torch.Tensor) -> None:
    # The sum is NaN or infinite whenever an element is, so the common case costs one reduction.
    if not torch.isfinite(value.detach().sum()) and not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or infinite values")


class Renderer(nn.Module):
    """Render depth maps as vertex-coloured grid meshes seen by a perspective camera.

    Args:
        image_size: S, the size of depth maps, colour maps and rendered images.
        fov: field of view in degrees.
        rotation_center_depth: the head rotates about (0, 0, rotation_center_depth).
        min_depth, max_depth: the canonical depth range; empty pixels get depth
            ``max_depth + 0.5 * (max_depth - min_depth)``.
        backend: "torch" (pure PyTorch, default) or "pytorch3d" (its MeshRasterizer, if installed).
    """

    def __init__(
        self,
        image_size: int,
        fov: float = 10.0,
        rotation_center_depth: float = 1.0,
        min_depth: float = 0.9,
        max_depth: float = 1.1,
        backend: str = "torch",
    ):
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if not 0 < min_depth < max_depth:
            raise ValueError(f"need 0 < min_depth < max_depth, got {min_depth}, {max_depth}")
        if backend == "pytorch3d":
            from .pytorch3d_backend import check_pytorch3d

            check_pytorch3d()
        self.camera = PerspectiveCamera(image_size, fov)
        self.image_size = image_size
        self.rotation_center_depth = rotation_center_depth
        self.min_depth, self.max_depth = min_depth, max_depth
        self.backend = backend
        self._faces: dict[tuple[int, str], torch.Tensor] = {}

    @property
    def empty_depth(self) -> float:
        return self.max_depth + 0.5 * (self.max_depth - self.min_depth)

    # ------------------------------------------------------------------ geometry
    def grid_faces(self, height: int | None = None, width: int | None = None, device=None) -> torch.Tensor:
        """Triangles (F, 3) of the image grid (cached per device)."""
        height = height or self.image_size
        width = width or self.image_size
        key = (height * 100_000 + width, str(device))
        if key not in self._faces:
            self._faces[key] = grid_faces(height, width, device=device)
        return self._faces[key]

    def depth_to_points(self, depth: torch.Tensor) -> torch.Tensor:
        """Depth maps (B, S, S) -> camera-space points (B, S, S, 3)."""
        return self.camera.unproject(depth)

    def normals(self, depth: torch.Tensor, unit: bool = True) -> torch.Tensor:
        """Normals (B, 3, S, S) of depth maps (B, S, S) by the official four-neighbour rule.

        ``unit=False`` keeps the official normalisation (length + 1e-7), which shading must use to
        reproduce official models; see :func:`~liftedgan_hf.rendering.shading.depth_normals`.
        """
        self._check_depth(depth)
        return depth_normals(depth, self.camera, epsilon=0.0 if unit else OFFICIAL_NORMAL_EPSILON)

    def _check_depth(self, depth: torch.Tensor) -> None:
        size = self.image_size
        if depth.dim() != 3 or depth.shape[1:] != (size, size):
            raise ValueError(f"depth must have shape (B, {size}, {size}), got {tuple(depth.shape)}")
        _check_finite("depth", depth)
        minimum = depth.detach().amin()
        if minimum <= 0:
            raise ValueError(f"depth must be positive (the camera is at z = 0), got a minimum of {minimum.item()}")

    def _check_inputs(self, depth, colors, rotation, translation, trans_map) -> None:
        self._check_depth(depth)
        batch, size = depth.shape[0], self.image_size
        if colors.dim() != 4 or colors.shape[0] != batch or colors.shape[2:] != (size, size):
            raise ValueError(f"colors must have shape ({batch}, C, {size}, {size}), got {tuple(colors.shape)}")
        for name, value in (("rotation", rotation), ("translation", translation)):
            if value.shape != (batch, 3):
                raise ValueError(f"{name} must have shape ({batch}, 3), got {tuple(value.shape)}")
            _check_finite(name, value)
        _check_finite("colors", colors)
        if trans_map is not None:
            if trans_map.shape != (batch, 1, size, size):
                raise ValueError(
                    f"trans_map must have shape ({batch}, 1, {size}, {size}), got {tuple(trans_map.shape)}"
                )
            _check_finite("trans_map", trans_map)

    def transformed_points(
        self,
        depth: torch.Tensor,
        rotation: torch.Tensor,
        translation: torch.Tensor,
        trans_map: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mesh vertices (B, S, S, 3) after the view: T * (R p + t) + (1 - T) * p."""
        return torch.stack(self._transformed_components(depth, rotation, translation, trans_map), dim=-1)

    def _transformed_components(self, depth, rotation, translation, trans_map):
        """x, y and z (each (B, S, S)) of :meth:`transformed_points`."""
        ray_x, ray_y = self.camera.rays(*depth.shape[-2:], dtype=depth.dtype, device=depth.device)
        points = (ray_x * depth, ray_y * depth, depth)
        moved = transform_components(*points, rotation, translation, self.rotation_center_depth)
        if trans_map is None:
            return moved
        blend = trans_map[:, 0]
        return tuple(blend * new + (1 - blend) * old for new, old in zip(moved, points))

    # ------------------------------------------------------------------ rendering
    def rasterize(self, vertices: torch.Tensor) -> Fragments:
        """Rasterise grid-mesh vertices (B, S, S, 3) into fragments."""
        return self._rasterize_components(*vertices.unbind(-1))

    def _rasterize_components(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> Fragments:
        faces = self.grid_faces(device=x.device)
        focal, centre = self.camera.focal, self.camera.principal_point
        pixel_x, pixel_y = x / z * focal + centre, y / z * focal + centre
        if self.backend == "pytorch3d":
            from .pytorch3d_backend import rasterize_pytorch3d

            face_index = rasterize_pytorch3d(torch.stack([x, y, z], -1).flatten(1, 2), faces, self.camera)
        else:
            with torch.no_grad():
                face_index = visible_faces_planar(
                    grid_face_corners(pixel_x.float()),
                    grid_face_corners(pixel_y.float()),
                    grid_face_corners(1.0 / z.float()),
                    self.image_size,
                )
        return interpolate_fragments_planar(pixel_x, pixel_y, z, faces, face_index)

    def render(
        self,
        depth: torch.Tensor,
        colors: torch.Tensor,
        rotation: torch.Tensor,
        translation: torch.Tensor,
        trans_map: torch.Tensor | None = None,
        background: float = 1.0,
        clip_contour_gradient: bool = False,
    ) -> RenderOutput:
        """Render canonical depth maps with per-pixel colours from a new view.

        Args:
            depth: (B, S, S) canonical depth, positive and finite.
            colors: (B, C, S, S) one colour per vertex (pixel), any range.
            rotation: (B, 3) degrees, (pitch, yaw, roll); translation: (B, 3).
            trans_map: (B, 1, S, S) in [0, 1], how much each vertex follows the view (None: all).
            background: colour of pixels no triangle covers.
            clip_contour_gradient: apply the official gradient rule (:func:`clip_contour_gradient`).
        """
        self._check_inputs(depth, colors, rotation, translation, trans_map)
        # Geometry needs float32 at least: half-precision pixel coordinates are off by a tenth of a
        # pixel at 256 and break barycentrics. So autocast is off here and inputs are promoted.
        dtype = torch.promote_types(depth.dtype, torch.float32)
        with torch.autocast(depth.device.type, enabled=False):
            depth, rotation, translation = depth.to(dtype), rotation.to(dtype), translation.to(dtype)
            trans_map = None if trans_map is None else trans_map.to(dtype)
            if clip_contour_gradient:
                depth = _ClipContourGradient.apply(depth)
            fragments = self._rasterize_components(
                *self._transformed_components(depth, rotation, translation, trans_map)
            )
            image = interpolate_attributes(fragments, colors.to(dtype).flatten(2))
            mask = fragments.mask[:, None]
            image = torch.where(mask, image, torch.full_like(image, background))
            rendered_depth = torch.where(
                fragments.mask, fragments.depth, torch.full_like(fragments.depth, self.empty_depth)
            )
        return RenderOutput(image=image.to(colors.dtype), depth=rendered_depth, mask=mask.to(colors.dtype))

    def extra_repr(self) -> str:
        return (
            f"image_size={self.image_size}, fov={self.camera.fov}, rotation_center_depth={self.rotation_center_depth}, "
            f"min_depth={self.min_depth}, max_depth={self.max_depth}, backend={self.backend!r}"
        )
