"""Optional visibility pass with pytorch3d's MeshRasterizer (CUDA kernels), same conventions.

pytorch3d has no wheels on PyPI; without it ``Renderer(backend="pytorch3d")`` raises an ImportError
that says how to install it. Only the visibility pass (which face covers which pixel) uses pytorch3d;
barycentric interpolation is shared with the pure-PyTorch backend, so gradients are identical.
"""

from __future__ import annotations

import math

import torch

from .camera import PerspectiveCamera

INSTALL_HINT = (
    "backend='pytorch3d' needs pytorch3d, which has no PyPI wheels: install it from source as described "
    "in https://github.com/facebookresearch/pytorch3d/blob/main/INSTALL.md "
    "(e.g. pip install 'git+https://github.com/facebookresearch/pytorch3d.git'), or use backend='torch'."
)


def check_pytorch3d() -> None:
    """Raise an ImportError with installation instructions when pytorch3d is missing."""
    try:
        import pytorch3d  # noqa: F401
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error


@torch.no_grad()
def rasterize_pytorch3d(vertices: torch.Tensor, faces: torch.Tensor, camera: PerspectiveCamera) -> torch.Tensor:
    """Visible face per pixel (B, S, S), -1 where none, for vertices (B, N, 3) in this package's camera
    frame (x right, y down, z forward)."""
    from pytorch3d.renderer import FoVPerspectiveCameras, MeshRasterizer, RasterizationSettings
    from pytorch3d.structures import Meshes

    batch, size = vertices.shape[0], camera.image_size
    # pytorch3d looks down +z with x left and y up; its fov spans the image edges, ours the outer
    # pixel centres, hence the S / (S - 1) widening.
    flipped = vertices * vertices.new_tensor([-1.0, -1.0, 1.0])
    half_angle = math.atan(math.tan(math.radians(camera.fov) / 2) * size / (size - 1))
    cameras = FoVPerspectiveCameras(fov=math.degrees(2 * half_angle), device=vertices.device)
    settings = RasterizationSettings(image_size=size, blur_radius=0.0, faces_per_pixel=1, perspective_correct=True)
    meshes = Meshes(verts=list(flipped.float()), faces=[faces] * batch)
    fragments = MeshRasterizer(cameras=cameras, raster_settings=settings)(meshes)
    packed = fragments.pix_to_face[..., 0]
    offsets = (torch.arange(batch, device=vertices.device) * faces.shape[0]).view(batch, 1, 1)
    return torch.where(packed >= 0, packed - offsets, packed)
