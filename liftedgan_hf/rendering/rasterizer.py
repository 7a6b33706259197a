"""Hard z-buffer rasterisation of triangle meshes in screen space, in pure PyTorch.

Two passes, as pytorch3d's rasteriser with ``blur_radius=0`` and ``faces_per_pixel=1``:

1. :func:`visible_faces` (no gradient) finds, for every pixel centre, the nearest triangle covering
   it. Triangles are grouped by the size of their pixel bounding box, and each group tests only the
   pixels of a k x k window, so the many pixel-sized triangles of a depth-map mesh cost a few tests
   each while rare large ones stay exact. The z-buffer is one ``scatter_reduce("amin")`` over int64
   keys holding the depth's float bits above the face index.
2. :func:`interpolate_fragments` recomputes the perspective-correct barycentric coordinates of the
   winning triangle at each pixel from the (differentiable) vertex positions, so gradients flow to
   vertex positions, depths and, through :func:`interpolate_attributes`, to vertex attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

INSIDE_TOLERANCE = 1e-5
# Slack, in pixels, of the bounding box of each face: a vertex that projects back onto a pixel centre
# up to float rounding must still count as covering it.
BOX_TOLERANCE = 1e-4
# Candidates tested at once; bounds memory at about 100 MB whatever the triangle sizes.
MAX_CANDIDATES_PER_CHUNK = 2**21
EMPTY_KEY = torch.iinfo(torch.int64).max


@dataclass
class Fragments:
    """Per-pixel rasterisation result for a batch of B images of H x W pixels.

    Attributes:
        face_index: (B, H, W) long, index of the visible face in the face list, -1 where none.
        barycentric: (B, H, W, 3) perspective-correct barycentric coordinates (0 where empty).
        depth: (B, H, W) camera-space z of the visible surface (0 where empty).
        mask: (B, H, W) bool, True where a face covers the pixel centre.
    """

    face_index: torch.Tensor
    barycentric: torch.Tensor
    depth: torch.Tensor
    mask: torch.Tensor


def _screen_barycentric(corners: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Screen-space barycentric coordinates (..., 3) of ``points`` (..., 2) in triangles (..., 3, 2)."""
    a, b, c = corners.unbind(-2)
    area = (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])
    to_a, to_b, to_c = a - points, b - points, c - points
    weight_a = to_b[..., 0] * to_c[..., 1] - to_b[..., 1] * to_c[..., 0]
    weight_b = to_c[..., 0] * to_a[..., 1] - to_c[..., 1] * to_a[..., 0]
    weight_c = to_a[..., 0] * to_b[..., 1] - to_a[..., 1] * to_b[..., 0]
    return torch.stack([weight_a, weight_b, weight_c], dim=-1) / area[..., None]


def _pack_keys(depth: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """int64 keys ordered by depth (positive float32 bits compare like the floats), then face index."""
    return (depth.float().view(torch.int32).to(torch.int64) << 32) | face


@torch.no_grad()
def visible_faces(corners: torch.Tensor, corner_depth: torch.Tensor, image_size: int) -> torch.Tensor:
    """Index of the nearest face covering each pixel centre: (B, image_size, image_size), -1 if none.

    Args:
        corners: (B, F, 3, 2) pixel coordinates of each face's vertices (pixel centres are integers).
        corner_depth: (B, F, 3) camera-space z of each face's vertices; faces behind the camera skipped.
    """
    batch, face_count = corners.shape[:2]
    size = image_size
    # Component-major copies, so every step below is a fast element-wise op on (B, F) tensors.
    x, y = corners.float().permute(3, 2, 0, 1).contiguous()  # (3, B, F) each
    inverse_depth = (1.0 / corner_depth.float()).permute(2, 0, 1).contiguous()
    low_x = (torch.minimum(torch.minimum(x[0], x[1]), x[2]) - BOX_TOLERANCE).ceil().clamp(min=0)
    low_y = (torch.minimum(torch.minimum(y[0], y[1]), y[2]) - BOX_TOLERANCE).ceil().clamp(min=0)
    high_x = (torch.maximum(torch.maximum(x[0], x[1]), x[2]) + BOX_TOLERANCE).floor().clamp(max=size - 1)
    high_y = (torch.maximum(torch.maximum(y[0], y[1]), y[2]) + BOX_TOLERANCE).floor().clamp(max=size - 1)
    extent_x, extent_y = high_x - low_x + 1, high_y - low_y + 1
    # Edge functions as planes in coordinates relative to the box corner (small numbers keep float32
    # exact enough): weight_i(o) = a_i * o_x + b_i * o_y + c_i are the screen-space barycentrics.
    x, y = x - low_x, y - low_y
    area = (x[1] - x[0]) * (y[2] - y[0]) - (y[1] - y[0]) * (x[2] - x[0])
    valid = (extent_x > 0) & (extent_y > 0) & (inverse_depth > 0).all(0) & (area.abs() > 1e-12)
    scale = 1.0 / torch.where(valid, area, torch.ones_like(area))
    planes = []  # per vertex i: (a_i, b_i, c_i), from the vertices after (n) and before (p) it
    for vertex in range(3):
        n, p = (vertex + 1) % 3, (vertex + 2) % 3
        planes.append(((y[n] - y[p]) * scale, (x[p] - x[n]) * scale, (x[n] * y[p] - y[n] * x[p]) * scale))

    keys = torch.full((batch * size * size,), EMPTY_KEY, dtype=torch.int64, device=corners.device)

    def record(rows, inverse_surface_depth, pixel_x, pixel_y):
        pixel = ((rows // face_count) * size + pixel_y) * size + pixel_x
        keys.scatter_reduce_(0, pixel, _pack_keys(1.0 / inverse_surface_depth, rows % face_count), reduce="amin")

    # Most faces of a depth-map mesh hold at most one pixel centre: test them all at once, at the corner.
    single = valid & (extent_x == 1) & (extent_y == 1)
    surface = planes[0][2] * inverse_depth[0] + planes[1][2] * inverse_depth[1] + planes[2][2] * inverse_depth[2]
    hit = single & (surface > 0)
    for _, _, offset_weight in planes:
        hit &= offset_weight >= -INSIDE_TOLERANCE
    rows = hit.view(-1).nonzero().squeeze(1)
    record(rows, surface.view(-1)[rows], low_x.view(-1)[rows].long(), low_y.view(-1)[rows].long())

    # Faces within two pixel centres per axis: test the pixel centres of a small window each.
    remaining = valid & ~single
    for width, height in ((2, 1), (1, 2), (2, 2)):
        fits = remaining & (extent_x <= width) & (extent_y <= height)
        remaining &= ~fits
        rows = fits.view(-1).nonzero().squeeze(1)
        if rows.numel() == 0:
            continue
        offset_y, offset_x = torch.meshgrid(
            torch.arange(height, device=corners.device, dtype=torch.float32),
            torch.arange(width, device=corners.device, dtype=torch.float32),
            indexing="ij",
        )
        offset_x, offset_y = offset_x.reshape(1, -1), offset_y.reshape(1, -1)

        def pick(values, rows=rows):
            return values.view(-1)[rows][:, None]

        inside = (offset_x < pick(extent_x)) & (offset_y < pick(extent_y))
        surface = torch.zeros_like(inside, dtype=torch.float32)
        for vertex, (a, b, c) in enumerate(planes):
            weight = pick(a) * offset_x + pick(b) * offset_y + pick(c)
            inside &= weight >= -INSIDE_TOLERANCE
            surface += weight * pick(inverse_depth[vertex])
        inside &= surface > 0
        hit_row, hit_slot = inside.nonzero(as_tuple=True)
        face_rows = rows[hit_row]
        record(
            face_rows,
            surface[hit_row, hit_slot],
            low_x.view(-1)[face_rows].long() + offset_x[0, hit_slot].long(),
            low_y.view(-1)[face_rows].long() + offset_y[0, hit_slot].long(),
        )

    # Larger faces row by row: on each pixel row of its box a face covers one span of pixel centres,
    # found from its three edge functions, so the work follows the face's area, not its box.
    rows = remaining.view(-1).nonzero().squeeze(1)
    flat = {
        "a": torch.stack([plane[0].view(-1) for plane in planes], 1),
        "b": torch.stack([plane[1].view(-1) for plane in planes], 1),
        "c": torch.stack([plane[2].view(-1) for plane in planes], 1),
    }
    # chunks of faces whose boxes hold at most MAX_CANDIDATES_PER_CHUNK pixel centres
    box_area = (extent_x * extent_y).view(-1)[rows]
    bounds = torch.searchsorted(
        box_area.cumsum(0),
        torch.arange(1, 2 + int(box_area.sum()) // MAX_CANDIDATES_PER_CHUNK) * MAX_CANDIDATES_PER_CHUNK,
    )
    start = 0
    for stop in [*bounds.tolist(), rows.numel()]:
        stop = max(stop, start + 1)
        if start >= rows.numel():
            break
        chunk = rows[start:stop]
        start = stop
        a, b, c = flat["a"][chunk], flat["b"][chunk], flat["c"][chunk]  # (n, 3)
        width, height = extent_x.view(-1)[chunk], extent_y.view(-1)[chunk]
        row_face = torch.repeat_interleave(torch.arange(chunk.numel(), device=corners.device), height.long())
        first_row = torch.cumsum(height.long(), 0) - height.long()
        offset_y = (torch.arange(row_face.numel(), device=corners.device) - first_row[row_face]).float()
        # weight_i = a_i * x + (b_i * y + c_i) >= -tolerance bounds x from one side, by the sign of a_i
        a_row = a[row_face]
        rest = b[row_face] * offset_y[:, None] + c[row_face]
        limit = (-INSIDE_TOLERANCE - rest) / torch.where(a_row == 0, torch.ones_like(a_row), a_row)
        infinity = torch.full_like(limit, float("inf"))
        lower = torch.where(a_row > 0, limit, -infinity).amax(1).clamp(min=0).ceil()
        upper = torch.where(a_row < 0, limit, infinity).amin(1)
        upper = torch.minimum(upper, width[row_face] - 1).floor()
        flat_edge_fails = ((a_row == 0) & (rest < -INSIDE_TOLERANCE)).any(1)
        count = torch.where(flat_edge_fails, torch.zeros_like(upper), (upper - lower + 1).clamp(min=0)).long()
        span_row = torch.repeat_interleave(torch.arange(count.numel(), device=corners.device), count)
        if span_row.numel() == 0:
            continue
        first = torch.cumsum(count, 0) - count
        offset_x = lower[span_row] + (torch.arange(span_row.numel(), device=corners.device) - first[span_row]).float()
        face = row_face[span_row]
        weights = a[face] * offset_x[:, None] + b[face] * offset_y[span_row, None] + c[face]
        surface = (weights * inverse_depth.view(3, -1)[:, chunk[face]].T).sum(1)
        inside = (weights >= -2 * INSIDE_TOLERANCE).all(1) & (surface > 0)
        face_rows = chunk[face[inside]]
        record(
            face_rows,
            surface[inside],
            low_x.view(-1)[face_rows].long() + offset_x[inside].long(),
            low_y.view(-1)[face_rows].long() + offset_y[span_row[inside]].long(),
        )
    found = keys != EMPTY_KEY
    face = torch.where(found, keys & 0xFFFFFFFF, torch.full_like(keys, -1))
    return face.view(batch, size, size)


def interpolate_fragments(
    pixels: torch.Tensor, depth: torch.Tensor, faces: torch.Tensor, face_index: torch.Tensor
) -> Fragments:
    """Differentiable perspective-correct barycentrics and depth of the visible faces.

    Args:
        pixels: (B, N, 2) vertex pixel coordinates; depth: (B, N) vertex z; faces: (F, 3);
        face_index: (B, H, W) from :func:`visible_faces`.
    """
    batch, height, width = face_index.shape
    mask = face_index >= 0
    vertex = faces[face_index.clamp(min=0)]  # (B, H, W, 3)
    flat = vertex.view(batch, -1)
    corners = torch.gather(pixels, 1, flat[..., None].expand(-1, -1, 2)).view(batch, height, width, 3, 2)
    corner_depth = torch.gather(depth, 1, flat).view(batch, height, width, 3)
    rows = torch.arange(height, dtype=pixels.dtype, device=pixels.device)
    cols = torch.arange(width, dtype=pixels.dtype, device=pixels.device)
    centres = torch.stack(torch.meshgrid(cols, rows, indexing="xy"), dim=-1)  # (H, W, 2) as (x, y)
    screen = _screen_barycentric(corners, centres.expand(batch, -1, -1, -1))
    weighted = screen / corner_depth
    inverse_depth = weighted.sum(-1)
    keep = mask[..., None].to(pixels.dtype)
    safe_inverse = torch.where(mask, inverse_depth, torch.ones_like(inverse_depth))
    barycentric = weighted / safe_inverse[..., None] * keep
    surface_depth = torch.where(mask, 1.0 / safe_inverse, torch.zeros_like(safe_inverse))
    return Fragments(face_index, barycentric, surface_depth, mask)


def rasterize(pixels: torch.Tensor, depth: torch.Tensor, faces: torch.Tensor, image_size: int) -> Fragments:
    """Rasterise a mesh given per-vertex pixel coordinates (B, N, 2), depths (B, N) and faces (F, 3):
    :func:`visible_faces` followed by :func:`interpolate_fragments`."""
    face_index = visible_faces(pixels[:, faces], depth[:, faces], image_size)
    return interpolate_fragments(pixels, depth, faces, face_index)


def interpolate_attributes(fragments: Fragments, attributes: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Per-vertex attributes (B, N, C) -> per-pixel values (B, C, H, W) (0 where no face)."""
    batch, height, width = fragments.face_index.shape
    channels = attributes.shape[-1]
    vertex = faces[fragments.face_index.clamp(min=0)].view(batch, -1)
    corner_values = torch.gather(attributes, 1, vertex[..., None].expand(-1, -1, channels))
    corner_values = corner_values.view(batch, height, width, 3, channels)
    values = (fragments.barycentric[..., None] * corner_values).sum(-2)
    return values.permute(0, 3, 1, 2)
