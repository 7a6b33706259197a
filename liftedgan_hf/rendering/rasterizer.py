"""Hard z-buffer rasterisation of triangle meshes in screen space, in pure PyTorch.

Two passes, as pytorch3d's rasteriser with ``blur_radius=0`` and ``faces_per_pixel=1``:

1. :func:`visible_faces` (no gradient) finds, for every pixel centre, the nearest triangle covering
   it. Triangles are grouped by the size of their pixel bounding box: pixel-sized ones (most of a
   depth-map mesh) test a 2 x 2 window of pixel centres, ones a view stretches a 3 x 3 window, and
   the rare larger ones the span of centres they cover on each row, so every face costs a few tests
   and large ones stay exact. The z-buffer is ``scatter_reduce("amin")`` over int64 keys holding
   the depth's float bits above the face index.
2. :func:`interpolate_fragments` recomputes the perspective-correct barycentric coordinates of the
   winning triangle at each pixel from the (differentiable) vertex positions, so gradients flow to
   vertex positions, depths and, through :func:`interpolate_attributes`, to vertex attributes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch

INSIDE_TOLERANCE = 1e-5
# Faces of a smaller screen area (pixels^2), edge-on slivers, are skipped, as pytorch3d skips
# zero-area faces: float32 cannot tell which side of them a pixel centre lies, and a pixel centre on
# one of their vertices would get barycentrics 0 / 0.
MIN_FACE_AREA = 1e-5
# Slack, in pixels, of the bounding box of each face: a vertex that projects back onto a pixel centre
# up to float rounding must still count as covering it.
BOX_TOLERANCE = 1e-4
# Candidates tested at once; bounds memory at about 100 MB whatever the triangle sizes.
MAX_CANDIDATES_PER_CHUNK = 2**21
# The z-buffer holds int64 keys: a candidate's depth as float32 bits in the high word (positive floats
# compare like their bits) above its face index, so one amin finds the nearest face and names it.
# Candidates outside their face carry depth +inf; pixels nobody tested keep EMPTY_KEY.
EMPTY_KEY = torch.iinfo(torch.int64).max
INFINITE_DEPTH_BITS = 0x7F800000
HIGH_WORD = 1 if sys.byteorder == "little" else 0  # of a key seen as two int32
FACES_PER_CHUNK = 2**18


@dataclass
class Fragments:
    """Per-pixel rasterisation result for a batch of B images of H x W pixels.

    Attributes:
        face_index: (B, H, W) long, index of the visible face in the face list, -1 where none.
        vertex_index: (B, 3, H, W) long, the vertices of that face (those of face 0 where none).
        barycentric: (B, 3, H, W) perspective-correct barycentric coordinates (0 where empty);
            corner-major like ``vertex_index``, so each corner's weights form a contiguous image.
        depth: (B, H, W) camera-space z of the visible surface (0 where empty).
        mask: (B, H, W) bool, True where a face covers the pixel centre.
    """

    face_index: torch.Tensor
    vertex_index: torch.Tensor
    barycentric: torch.Tensor
    depth: torch.Tensor
    mask: torch.Tensor


def _key_words(face: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys shaped like ``face`` with its indices in their low words, and a float32 view of their
    high words: writing depths there completes them (two cheap writes instead of int64 arithmetic)."""
    words = torch.empty(*face.shape, 2, dtype=torch.int32, device=face.device)
    words[..., 1 - HIGH_WORD] = face
    return words.view(torch.int64)[..., 0], words.view(torch.float32)[..., HIGH_WORD]


@torch.no_grad()
def visible_faces(corners: torch.Tensor, corner_depth: torch.Tensor, image_size: int) -> torch.Tensor:
    """Index of the nearest face covering each pixel centre: (B, image_size, image_size), -1 if none.

    Args:
        corners: (B, F, 3, 2) pixel coordinates of each face's vertices (pixel centres are integers).
        corner_depth: (B, F, 3) camera-space z of each face's vertices; faces behind the camera skipped.
    """
    x, y = corners.float().permute(3, 2, 0, 1).contiguous()
    return visible_faces_planar(x, y, 1.0 / corner_depth.float().permute(2, 0, 1), image_size)


@torch.no_grad()
def visible_faces_planar(
    x: torch.Tensor, y: torch.Tensor, inverse_depth: torch.Tensor, image_size: int
) -> torch.Tensor:
    """:func:`visible_faces` on vertex-major inputs: x, y and 1/z of the three vertices of each face as
    (3, B, F) tensors, the layout every step below works in (element-wise ops on (B, F) slices)."""
    _, batch, face_count = x.shape
    size = image_size
    # Spare keys past the last pixel take the candidates of off-screen boxes and of window offsets
    # past a box (never inside, so their depth is +inf): no masking of pixel indices needed.
    keys = torch.full((batch * size * size + 2 * size + 2,), EMPTY_KEY, dtype=torch.int64, device=x.device)
    # A batch of big meshes goes a few images at a time: the dozens of passes over (B, F) arrays
    # then stay in the CPU cache, which more than pays for the extra Python calls.
    images_per_chunk = max(1, FACES_PER_CHUNK // face_count)
    parts = [
        _small_faces_pass(
            keys, *(value[:, start : start + images_per_chunk] for value in (x, y, inverse_depth)), start, size
        )
        for start in range(0, batch, images_per_chunk)
    ]
    # the larger faces of all images together, so their passes pay Python's overhead once
    larger = _Faces(*(torch.cat(values, dim=-1) for values in zip(*(part.tensors() for part in parts))))
    # Faces a view stretches over up to 3 x 3 pixel centres (a tenth of them at yaw 30): a 3 x 3
    # window. Larger ones, rare in depth-map meshes, row by row.
    medium = (larger.extent_x <= 3) & (larger.extent_y <= 3)
    _window_pass(keys, larger.select(medium), 3, size)
    _span_pass(keys, larger.select(~medium), size)
    keys = keys[: batch * size * size]
    face = torch.where((keys >> 32) < INFINITE_DEPTH_BITS, keys & 0xFFFFFFFF, torch.full_like(keys, -1))
    return face.view(batch, size, size)


@dataclass
class _Faces:
    """Faces for one pass of :func:`visible_faces_planar`, as same-shaped tensors.

    ``planes`` (12, ...): a_0..a_2, b_0..b_2, c_0..c_2 of the edge functions
    weight_i(o) = a_i * o_x + b_i * o_y + c_i, the screen-space barycentrics at the pixel offset o
    from the corner of the face's box, then the a, b, c of 1/z in the same form (1/z is affine in
    screen space). ``corner_pixel``: index in the keys of that corner; ``extent_x``, ``extent_y``:
    pixel centres the box spans; ``face_id``: index in the face list.
    """

    planes: torch.Tensor
    corner_pixel: torch.Tensor
    extent_x: torch.Tensor
    extent_y: torch.Tensor
    face_id: torch.Tensor

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return self.planes, self.corner_pixel, self.extent_x, self.extent_y, self.face_id

    def select(self, keep: torch.Tensor) -> _Faces:
        """The faces where ``keep`` is True, flattened to one dimension."""
        index = keep.reshape(-1).nonzero().squeeze(1)
        return _Faces(*(value.flatten(-keep.dim()).index_select(-1, index) for value in self.tensors()))


def _small_faces_pass(
    keys: torch.Tensor, x: torch.Tensor, y: torch.Tensor, inverse_depth: torch.Tensor, first_image: int, size: int
) -> _Faces:
    """Z-buffer the faces (x, y, 1/z: (3, b, F)) of images ``first_image`` onwards whose box holds at
    most 2 x 2 pixel centres; return the larger ones, flattened, for the other passes."""
    _, batch, face_count = x.shape
    # Boxes clamped to the image; an off-screen face's box ends up empty (extent <= 0).
    low_x = (x.amin(0) - BOX_TOLERANCE).ceil_().clamp_(0, size)
    low_y = (y.amin(0) - BOX_TOLERANCE).ceil_().clamp_(0, size)
    extent_x = (x.amax(0) + BOX_TOLERANCE).floor_().clamp_(max=size - 1).sub_(low_x).add_(1)
    extent_y = (y.amax(0) + BOX_TOLERANCE).floor_().clamp_(max=size - 1).sub_(low_y).add_(1)
    # coordinates relative to the box corner: small numbers keep float32 exact enough
    x, y = x - low_x, y - low_y
    # Unscaled planes first (a_i = y_n - y_p, b_i = x_p - x_n, c_i = x_n y_p - y_n x_p for the vertices
    # after (n) and before (p) vertex i): they share their differences, and the c_i sum to the area.
    planes = torch.empty(12, batch, face_count, dtype=x.dtype, device=x.device)
    for vertex in range(3):
        n, p = (vertex + 1) % 3, (vertex + 2) % 3
        torch.sub(y[n], y[p], out=planes[vertex])
        torch.sub(x[p], x[n], out=planes[3 + vertex])
    area = torch.addcmul(planes[5] * planes[1], planes[2], planes[4], value=-1)
    for vertex in range(2):
        n, p = vertex + 1, (vertex + 2) % 3
        torch.addcmul(x[n] * y[p], y[n], x[p], value=-1, out=planes[6 + vertex])
    torch.sub(area - planes[6], planes[7], out=planes[8])
    valid = (extent_x > 0) & (extent_y > 0) & (inverse_depth.amin(0) > 0) & (area.abs() >= MIN_FACE_AREA)
    planes[:9] *= 1.0 / torch.where(valid, area, torch.ones_like(area))
    for form in range(3):
        torch.sum(planes[3 * form : 3 * form + 3] * inverse_depth, dim=0, out=planes[9 + form])
    # the corner's index within its image is exact in float32 (below 2^24) for any practical size
    image_start = torch.arange(first_image, first_image + batch, device=x.device)[:, None] * (size * size)
    corner_pixel = torch.add(low_x, low_y, alpha=size).long() + image_start
    face_id = torch.arange(face_count, device=x.device).expand(batch, face_count)
    faces = _Faces(planes, corner_pixel, extent_x, extent_y, face_id)
    # Most faces of a depth-map mesh are about a pixel wide, so their box holds at most 2 x 2 pixel
    # centres: test those four candidates for every face at once, with no per-face bookkeeping.
    small = valid & (extent_x <= 2) & (extent_y <= 2)
    _window_pass(keys, faces, 2, size, small)
    larger = (valid & ~small).view(-1).nonzero().squeeze(1)
    # selected by hand: a face's id is its flat position modulo face_count, so the (batch, F) ids are
    # never materialised
    return _Faces(
        planes.view(12, -1).index_select(1, larger),
        *(value.view(-1).index_select(0, larger) for value in (corner_pixel, extent_x, extent_y)),
        larger % face_count,
    )


def _window_pass(
    keys: torch.Tensor, faces: _Faces, window: int, size: int, selected: torch.Tensor | None = None
) -> None:
    """Z-buffer each face's candidates in the first ``window`` x ``window`` pixel centres of its box
    (only the faces where ``selected``, if given)."""
    a, b, weights = faces.planes[0:3], faces.planes[3:6], faces.planes[6:9]
    inverse_a, inverse_b, inverse_surface = faces.planes[9:12]
    # a snake walk through the window, so each offset is one step of a plane from the one before
    path = [(column if row % 2 == 0 else window - 1 - column, row) for row in range(window) for column in range(window)]
    # which faces' boxes reach each offset, built once for the window
    reach_x = [None] + [faces.extent_x > offset for offset in range(1, window)]
    reach_y = [selected] + [faces.extent_y > offset for offset in range(1, window)]
    if selected is not None:
        reach_y[1:] = [reach & selected for reach in reach_y[1:]]
    candidate_keys, key_depth = _key_words(faces.face_id)
    for step, (offset_x, offset_y) in enumerate(path):
        if step and offset_y != path[step - 1][1]:
            weights, inverse_surface = weights + b, inverse_surface + inverse_b
        elif step and offset_x > path[step - 1][0]:
            weights, inverse_surface = weights + a, inverse_surface + inverse_a
        elif step:
            weights, inverse_surface = weights - a, inverse_surface - inverse_a
        inside = weights.amin(0) >= -INSIDE_TOLERANCE
        inside &= inverse_surface > 0
        for reach in (reach_x[offset_x], reach_y[offset_y]):
            if reach is not None:
                inside &= reach
        torch.reciprocal(torch.where(inside, inverse_surface, 0.0), out=key_depth)  # 1/0: inf outside
        # the keys seen from this offset: the box corner's index then points at the candidate pixel
        keys[offset_y * size + offset_x :].scatter_reduce_(
            0, faces.corner_pixel.view(-1), candidate_keys.view(-1), "amin"
        )


def _span_pass(keys: torch.Tensor, faces: _Faces, size: int) -> None:
    """Z-buffer faces of any size (flattened) row by row: on each pixel row of its box a face covers
    one span of pixel centres, found from its three edge functions, so the work follows its area."""
    # (n, 3) per-vertex planes, so one gather picks a face's three values
    a, b, c = (faces.planes[3 * form : 3 * form + 3].T.contiguous() for form in range(3))
    inverse_a, inverse_b, inverse_c = faces.planes[9:12]
    # chunks of faces whose boxes hold at most MAX_CANDIDATES_PER_CHUNK pixel centres
    box_area = faces.extent_x * faces.extent_y
    bounds = torch.searchsorted(
        box_area.cumsum(0),
        torch.arange(1, 2 + int(box_area.sum()) // MAX_CANDIDATES_PER_CHUNK) * MAX_CANDIDATES_PER_CHUNK,
    )
    start = 0
    for stop in [*bounds.tolist(), box_area.numel()]:
        stop = max(stop, start + 1)
        if start >= box_area.numel():
            break
        chunk = torch.arange(start, stop, device=keys.device)
        start = stop
        height = faces.extent_y[chunk].long()
        row_face = torch.repeat_interleave(chunk, height)
        first_row = torch.cumsum(height, 0) - height
        offset_y = (torch.arange(row_face.numel(), device=keys.device) - first_row[row_face - chunk[0]]).float()
        # weight_i = a_i * x + (b_i * y + c_i) >= -tolerance bounds x from one side, by the sign of a_i
        a_row = a[row_face]
        rest = b[row_face] * offset_y[:, None] + c[row_face]
        limit = (-INSIDE_TOLERANCE - rest) / torch.where(a_row == 0, torch.ones_like(a_row), a_row)
        infinity = torch.full_like(limit, float("inf"))
        lower = torch.where(a_row > 0, limit, -infinity).amax(1).clamp(min=0).ceil()
        upper = torch.where(a_row < 0, limit, infinity).amin(1)
        upper = torch.minimum(upper, faces.extent_x[row_face] - 1).floor()
        flat_edge_fails = ((a_row == 0) & (rest < -INSIDE_TOLERANCE)).any(1)
        count = torch.where(flat_edge_fails, torch.zeros_like(upper), (upper - lower + 1).clamp(min=0)).long()
        span_row = torch.repeat_interleave(torch.arange(count.numel(), device=keys.device), count)
        if span_row.numel() == 0:
            continue
        first = torch.cumsum(count, 0) - count
        offset_x = lower[span_row] + (torch.arange(span_row.numel(), device=keys.device) - first[span_row]).float()
        face = row_face[span_row]
        offset_y = offset_y[span_row]
        weights = a[face] * offset_x[:, None] + b[face] * offset_y[:, None] + c[face]
        inverse_surface = inverse_a[face] * offset_x + inverse_b[face] * offset_y + inverse_c[face]
        inside = (weights >= -2 * INSIDE_TOLERANCE).all(1) & (inverse_surface > 0)
        face, offset_x, offset_y = face[inside], offset_x[inside], offset_y[inside]
        pixel = faces.corner_pixel[face] + offset_y.long() * size + offset_x.long()
        candidate_keys, key_depth = _key_words(faces.face_id[face])
        torch.reciprocal(inverse_surface[inside], out=key_depth)
        keys.scatter_reduce_(0, pixel, candidate_keys, reduce="amin")


def _gather_vertices(values: torch.Tensor, vertex_index: torch.Tensor) -> torch.Tensor:
    """Per-vertex values (B, C, N) at vertex_index (B, 3, H, W) -> (B, C, 3, H, W), differentiably.

    One ``gather`` along the vertices with the index broadcast over channels: no per-image offsets
    and no copy of the index, twice as fast on a CPU as ``index_select`` on flattened values.
    """
    batch, channels, _ = values.shape
    index = vertex_index.reshape(batch, 1, -1).expand(batch, channels, -1)
    return values.gather(2, index).view(batch, channels, *vertex_index.shape[1:])


def interpolate_fragments(
    pixels: torch.Tensor, depth: torch.Tensor, faces: torch.Tensor, face_index: torch.Tensor
) -> Fragments:
    """Differentiable perspective-correct barycentrics and depth of the visible faces.

    Args:
        pixels: (B, N, 2) vertex pixel coordinates; depth: (B, N) vertex z; faces: (F, 3);
        face_index: (B, H, W) from :func:`visible_faces`.
    """
    return interpolate_fragments_planar(pixels[..., 0], pixels[..., 1], depth, faces, face_index)


def interpolate_fragments_planar(
    pixel_x: torch.Tensor, pixel_y: torch.Tensor, depth: torch.Tensor, faces: torch.Tensor, face_index: torch.Tensor
) -> Fragments:
    """:func:`interpolate_fragments` with the vertex pixel coordinates and depth as separate (B, ...)
    tensors of N values each (e.g. (B, S, S) grids)."""
    batch, height, width = face_index.shape
    mask = face_index >= 0
    # whole (F, 3) rows: gathering from the transposed face list takes 6x longer
    vertex_index = faces.index_select(0, face_index.clamp(min=0).view(-1))
    vertex_index = vertex_index.view(batch, height, width, 3).permute(0, 3, 1, 2).contiguous()
    vertices = torch.stack([pixel_x.reshape(batch, -1), pixel_y.reshape(batch, -1), depth.reshape(batch, -1)], 1)
    corner_x, corner_y, corner_depth = _gather_vertices(vertices, vertex_index).unbind(1)  # (B, 3, H, W) each
    centre_x = torch.arange(width, dtype=vertices.dtype, device=vertices.device)
    centre_y = torch.arange(height, dtype=vertices.dtype, device=vertices.device)[:, None]
    to_x, to_y = (corner_x - centre_x).unbind(1), (corner_y - centre_y).unbind(1)
    # screen-space barycentrics times the face's area: the signed areas of the triangles the pixel
    # centre makes with each edge
    screen = [to_x[n] * to_y[p] - to_y[n] * to_x[p] for n, p in ((1, 2), (2, 0), (0, 1))]
    # perspective-correct ones: weight_i / z_i normalised (the area cancels); depth = area / sum
    weighted = torch.stack(screen, 1) / corner_depth
    area = screen[0] + screen[1] + screen[2]
    # A visible face can still be degenerate here (chosen by pytorch3d, or its area rounds differently
    # from the visibility pass's): its pixels take the mean of its corners rather than 0 / 0.
    solvable = mask & (area.abs() >= MIN_FACE_AREA)
    total = torch.where(solvable, weighted.sum(1), torch.ones_like(area))
    barycentric = torch.where(solvable[:, None], weighted / total[:, None], mask[:, None].to(vertices.dtype) / 3)
    surface_depth = torch.where(solvable, area / total, torch.where(mask, corner_depth.mean(1), 0.0))
    return Fragments(face_index, vertex_index, barycentric, surface_depth, mask)


def rasterize(pixels: torch.Tensor, depth: torch.Tensor, faces: torch.Tensor, image_size: int) -> Fragments:
    """Rasterise a mesh given per-vertex pixel coordinates (B, N, 2), depths (B, N) and faces (F, 3):
    :func:`visible_faces` followed by :func:`interpolate_fragments`."""
    face_index = visible_faces(pixels[:, faces], depth[:, faces], image_size)
    return interpolate_fragments(pixels, depth, faces, face_index)


def interpolate_attributes(fragments: Fragments, attributes: torch.Tensor) -> torch.Tensor:
    """Per-vertex attributes (B, C, N) -> per-pixel values (B, C, H, W) (0 where no face)."""
    corner_values = _gather_vertices(attributes, fragments.vertex_index)  # (B, C, 3, H, W)
    weights = fragments.barycentric[:, None]
    values = corner_values[:, :, 0] * weights[:, :, 0] + corner_values[:, :, 1] * weights[:, :, 1]
    return values + corner_values[:, :, 2] * weights[:, :, 2]
