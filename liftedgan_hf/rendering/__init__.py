"""Differentiable rendering of depth-map meshes in pure PyTorch (pytorch3d optional).

Pieces, as in pytorch3d: :mod:`.camera` (intrinsics, views, grid meshes), :mod:`.rasterizer`
(visibility and barycentric fragments), :mod:`.shading` (normals, Lambertian light) and
:mod:`.renderer` (LiftedGAN's renderer that puts them together).
"""

from .camera import PerspectiveCamera, grid_faces, rotation_matrix, transform_points
from .rasterizer import Fragments, interpolate_attributes, interpolate_fragments, rasterize, visible_faces
from .renderer import Renderer, RenderOutput, clip_contour_gradient
from .shading import apply_shading, depth_normals, lambertian_shading, unit_normals

__all__ = [
    "Fragments",
    "PerspectiveCamera",
    "RenderOutput",
    "Renderer",
    "apply_shading",
    "clip_contour_gradient",
    "depth_normals",
    "grid_faces",
    "interpolate_attributes",
    "interpolate_fragments",
    "lambertian_shading",
    "rasterize",
    "rotation_matrix",
    "transform_points",
    "unit_normals",
    "visible_faces",
]
