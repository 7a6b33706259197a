"""The renderer against analytic answers: ray-plane intersections, occlusion, symmetry, normals, gradients."""

import importlib.util
import math

import pytest
import torch

from liftedgan_hf.rendering import (
    PerspectiveCamera,
    Renderer,
    clip_contour_gradient,
    grid_faces,
    interpolate_fragments,
    lambertian_shading,
    rasterize,
    rotation_matrix,
    visible_faces,
)
from liftedgan_hf.rendering.camera import grid_face_corners

ZERO = torch.zeros(1, 3)


def view(pitch=0.0, yaw=0.0, roll=0.0, dtype=torch.float32):
    return torch.tensor([[pitch, yaw, roll]], dtype=dtype)


def ray_directions(size, fov=10.0, dtype=torch.float64):
    camera = PerspectiveCamera(size, fov)
    return camera.unproject(torch.ones(1, size, size, dtype=dtype))[0]  # (S, S, 3) with z = 1


def plane_depth(rotation_degrees, size, point_on_plane=(0.0, 0.0, 1.0), canonical_normal=(0.0, 0.0, 1.0)):
    """Depth along each pixel ray of the plane through ``point_on_plane`` after rotating it about
    (0, 0, 1) by ``rotation_degrees``."""
    rotation = rotation_matrix(torch.tensor([rotation_degrees], dtype=torch.float64))[0]
    centre = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    normal = rotation @ torch.tensor(canonical_normal, dtype=torch.float64)
    point = rotation @ (torch.tensor(point_on_plane, dtype=torch.float64) - centre) + centre
    rays = ray_directions(size)
    return (normal @ point) / (rays @ normal)


# ---------------------------------------------------------------- geometry


def test_rotation_matrix_convention():
    yaw = rotation_matrix(view(yaw=30.0, dtype=torch.float64))[0]
    a = math.radians(30)
    expected = torch.tensor(
        [[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]], dtype=torch.float64
    )
    assert torch.allclose(yaw, expected)
    combined = rotation_matrix(view(10.0, 20.0, 30.0, dtype=torch.float64))[0]
    parts = [
        rotation_matrix(view(**{k: v}, dtype=torch.float64))[0]
        for k, v in (("roll", 30.0), ("yaw", 20.0), ("pitch", 10.0))
    ]
    assert torch.allclose(combined, parts[0] @ parts[1] @ parts[2])


def test_unproject_and_project_round_trip():
    camera = PerspectiveCamera(9, fov=10.0)
    depth = torch.rand(2, 9, 9) + 0.9
    points = camera.unproject(depth)
    assert torch.allclose(points[..., 2], depth)
    focal = 4 / math.tan(math.radians(5))
    assert torch.allclose(points[0, 0, 0, :2], torch.tensor([-4.0, -4.0]) / focal * depth[0, 0, 0])
    pixels = camera.project(points)
    cols, rows = torch.meshgrid(torch.arange(9.0), torch.arange(9.0), indexing="xy")
    assert torch.allclose(pixels, torch.stack([cols, rows], -1).expand_as(pixels), atol=1e-4)


def test_grid_face_corners_equal_gather():
    values = torch.randn(2, 4, 5)
    faces = grid_faces(4, 5)
    assert faces.shape == (2 * 3 * 4, 3)
    assert torch.equal(grid_face_corners(values), values.reshape(2, -1)[:, faces].permute(2, 0, 1))


# ---------------------------------------------------------------- rendering


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_identity_view_reproduces_colours_at_pixel_centres(dtype):
    torch.manual_seed(0)
    renderer = Renderer(16)
    depth = (1 + 0.05 * torch.randn(2, 16, 16)).to(dtype)
    colors = torch.rand(2, 3, 16, 16, dtype=dtype)
    output = renderer.render(depth, colors, torch.zeros(2, 3, dtype=dtype), torch.zeros(2, 3, dtype=dtype))
    tolerance = 1e-4 if dtype == torch.float32 else 1e-9
    assert torch.allclose(output.image, colors, atol=tolerance)
    assert torch.allclose(output.depth, depth, atol=tolerance)
    assert output.mask.all()


@pytest.mark.parametrize(("pitch", "yaw"), [(0.0, 25.0), (-15.0, 0.0), (10.0, -35.0)])
def test_rotated_plane_depth_is_the_ray_plane_intersection(pitch, yaw):
    size = 32
    renderer = Renderer(size)
    depth = torch.ones(1, size, size, dtype=torch.float64)
    output = renderer.render(
        depth, torch.zeros(1, 3, size, size, dtype=torch.float64), view(pitch, yaw, dtype=torch.float64), ZERO.double()
    )
    expected = plane_depth([pitch, yaw, 0.0], size)
    covered = output.mask[0, 0] > 0
    assert covered.float().mean() > 0.5
    assert torch.allclose(output.depth[0][covered], expected[covered], atol=1e-4)
    assert torch.all(output.depth[0][~covered] == renderer.empty_depth)


def test_silhouette_extent_matches_foreshortening():
    size, yaw = 64, 40.0
    renderer = Renderer(size)
    output = renderer.render(torch.ones(1, size, size), torch.zeros(1, 3, size, size), view(yaw=yaw), ZERO)
    half_width = math.tan(math.radians(5))  # the grid spans the outer pixel centres at depth 1
    a = math.radians(yaw)
    camera = renderer.camera
    # the edges x = -h and x = +h of the plane z = 1, rotated about (0, 0, 1)
    edges = [
        (-half_width * math.cos(a), 1 + half_width * math.sin(a)),
        (half_width * math.cos(a), 1 - half_width * math.sin(a)),
    ]
    u_left, u_right = (x / z * camera.focal + camera.principal_point for x, z in edges)
    middle_row = output.mask[0, 0, size // 2].nonzero().squeeze(1)
    assert middle_row.min().item() == math.ceil(u_left - 1e-6)
    assert middle_row.max().item() == math.floor(u_right + 1e-6)
    assert u_right - u_left < (size - 1) * math.cos(a) + 1  # narrower than the frontal plane


def test_occlusion_nearer_surface_wins():
    size = 48
    renderer = Renderer(size)
    depth = torch.full((1, size, size), 1.08, dtype=torch.float64)
    depth[:, 16:32, 16:32] = 0.92
    colors = torch.zeros(1, 3, size, size, dtype=torch.float64)
    colors[:, 0] = 1.0  # far plane red
    colors[:, 0, 16:32, 16:32] = 0.0
    colors[:, 1, 16:32, 16:32] = 1.0  # near patch green
    rotation = [0.0, 20.0, 0.0]
    output = renderer.render(depth, colors, view(*rotation, dtype=torch.float64), ZERO.double())
    far = plane_depth(rotation, size, point_on_plane=(0.0, 0.0, 1.08))
    near = plane_depth(rotation, size, point_on_plane=(0.0, 0.0, 0.92))
    covered = output.mask[0, 0] > 0
    # nothing is ever behind the visible surface's occluders: depth <= the far plane everywhere
    assert torch.all(output.depth[0][covered] <= far[covered] + 1e-6)
    green = (output.image[0, 1] > 0.999) & covered
    assert green.sum() > 100
    assert torch.allclose(output.depth[0][green], near[green], atol=1e-4)
    # pixels where the far plane is behind the patch show the patch
    unrotated = renderer.render(depth, colors, view(dtype=torch.float64), ZERO.double())
    assert (unrotated.image[0, 1] > 0.999).sum() == 16 * 16


def test_mirror_symmetry():
    size = 48
    renderer = Renderer(size)
    rows, cols = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    depth = (1.02 - 0.08 * (1 - (rows**2 + (cols - 0.2) ** 2)).clamp(min=0))[None]
    colors = torch.stack([cols, rows, cols * rows])[None] * 0.5 + 0.5
    translation = torch.tensor([[0.01, 0.0, 0.0]])
    output = renderer.render(depth, colors, view(yaw=25.0), translation)
    mirrored = renderer.render(
        depth.flip(-1),
        colors.flip(-1) * torch.tensor([-1.0, 1, -1])[None, :, None, None]
        + torch.tensor([1.0, 0, 1])[None, :, None, None],
        view(yaw=-25.0),
        translation * torch.tensor([-1.0, 1, 1]),
    )
    mask_difference = (output.mask != mirrored.mask.flip(-1)).float().mean()
    assert mask_difference < 0.01
    both = (output.mask * mirrored.mask.flip(-1)) > 0
    flipped_back = (
        mirrored.image.flip(-1) * torch.tensor([-1.0, 1, -1])[None, :, None, None]
        + torch.tensor([1.0, 0, 1])[None, :, None, None]
    )
    assert (output.image - flipped_back).abs()[both.expand_as(output.image)].max() < 0.02
    assert torch.allclose(output.depth[both[:, 0]], mirrored.depth.flip(-1)[both[:, 0]], atol=2e-3)


def test_transformation_map_zero_keeps_the_image():
    torch.manual_seed(1)
    renderer = Renderer(24)
    depth = 1 + 0.03 * torch.rand(2, 24, 24)
    colors = torch.rand(2, 3, 24, 24)
    still = renderer.render(depth, colors, torch.zeros(2, 3), torch.zeros(2, 3))
    moved = renderer.render(
        depth,
        colors,
        torch.tensor([[10.0, 40.0, 5.0], [-20.0, -30.0, 0.0]]),
        torch.full((2, 3), 0.02),
        trans_map=torch.zeros(2, 1, 24, 24),
    )
    assert torch.allclose(moved.image, still.image, atol=1e-5)
    # and a map of ones equals no map
    full = renderer.render(
        depth, colors, torch.tensor([[10.0, 40.0, 5.0]] * 2), torch.zeros(2, 3), trans_map=torch.ones(2, 1, 24, 24)
    )
    free = renderer.render(depth, colors, torch.tensor([[10.0, 40.0, 5.0]] * 2), torch.zeros(2, 3))
    assert torch.allclose(full.image, free.image)


def test_generic_rasterize_matches_grid_path():
    torch.manual_seed(2)
    renderer = Renderer(20)
    depth = 1 + 0.05 * torch.rand(1, 20, 20)
    vertices = renderer.transformed_points(depth, view(5.0, 30.0), ZERO)
    flat = vertices.reshape(1, -1, 3)
    generic = rasterize(renderer.camera.project(flat), flat[..., 2], grid_faces(20, 20), 20)
    assert torch.equal(generic.face_index, renderer.rasterize(vertices).face_index)


def brute_force_face_depths(corners, corner_depth, size):
    """Depth of every face at every pixel centre in float64, inf where it does not cover it:
    (S, S, F); and, per pixel, the distance of its nearest inside/outside decision from a face edge."""
    centre_y, centre_x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centre = torch.stack([centre_x, centre_y], -1).double().view(-1, 1, 1, 2)
    corners, corner_depth = corners.double(), corner_depth.double()

    def cross(origin, first, second):
        first, second = first - origin, second - origin
        return first[..., 0] * second[..., 1] - first[..., 1] * second[..., 0]

    area = cross(corners[:, 0], corners[:, 1], corners[:, 2])[:, None]  # (F, 1)
    weights = cross(centre, corners.roll(-1, 1), corners.roll(-2, 1)) / area  # (P, F, 3)
    inverse_depth = (weights / corner_depth).sum(-1)
    inside = (weights.amin(-1) >= 0) & (inverse_depth > 0) & (corner_depth.amin(-1) > 0)
    depth = torch.where(inside, 1 / inverse_depth, torch.full_like(inverse_depth, math.inf))
    margin = weights.amin(-1).abs().amin(1)
    return depth.view(size, size, -1), margin.view(size, size)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_visible_faces_match_brute_force(seed):
    """Faces from under a pixel to a third of the image wide, overlapping, partly off-screen or
    behind the camera: all the rasteriser's passes against testing every face at every pixel."""
    generator = torch.Generator().manual_seed(seed)
    size, count = 24, 400
    centres = torch.rand(count, 1, 2, generator=generator) * (size + 6) - 3
    scale = torch.rand(count, 1, 1, generator=generator) ** 3 * 5 + 0.3  # mostly pixel-sized
    corners = centres + scale * torch.randn(count, 3, 2, generator=generator)
    corner_depth = 1 + 0.2 * torch.rand(count, 3, generator=generator)
    corner_depth[:5, 0] = -0.5  # faces crossing the camera plane are skipped
    face = visible_faces(corners[None], corner_depth[None], size)[0]
    depths, margin = brute_force_face_depths(corners, corner_depth, size)
    nearest = depths.amin(-1)
    clear = margin > 1e-3  # no face edge within rounding of the pixel centre
    assert clear.float().mean() > 0.5
    assert torch.equal((face >= 0)[clear], torch.isfinite(nearest)[clear])
    covered = (face >= 0) & clear
    assert covered.sum() > 100
    chosen = depths.gather(-1, face.clamp(min=0)[..., None])[..., 0]
    assert torch.allclose(chosen[covered], nearest[covered], rtol=0, atol=1e-5)
    # every pass ran: pixel-sized faces, 3 x 3 windows and larger spans
    extent = corners.amax(1).floor() - corners.amin(1).ceil() + 1
    widest = extent[face[covered].unique()].amax(1)
    assert (widest <= 2).any() and (widest == 3).any() and (widest > 3).any()


# An edge-on sliver met in training (area 1.2e-7 pixels^2) with its middle vertex exactly on the pixel
# centre (17, 63); float32 rounds the sub-areas at that centre to zero, so barycentrics were 0 / 0.
SLIVER = torch.tensor(
    [[[19.55133628845215, 62.00133514404297], [17.0, 63.0], [19.951509475708008, 61.844696044921875]]]
)
SLIVER_DEPTH = torch.tensor([[1.0147, 1.0122, 1.0113]])


def test_edge_on_slivers_are_skipped():
    # area 3.8e-6 pixels^2 (its apex one float32 step above 63), its long edge through the pixel
    # centres (16..18, 63), in front of a pixel-sized face that covers (17, 63)
    sliver = torch.tensor([[[16.0, 63.0], [17.0, 63.0000038], [18.0, 63.0]]])
    behind = torch.tensor([[[16.5, 62.5], [17.5, 62.5], [17.0, 63.6]]])
    pixels = torch.cat([sliver, behind], 1).requires_grad_()
    depth = torch.cat([torch.full((1, 3), 1.0), torch.full((1, 3), 1.05)], 1).requires_grad_()
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    fragments = rasterize(pixels, depth, faces, 64)
    assert fragments.face_index[0, 63, 17] == 1  # the nearer sliver does not win
    assert fragments.mask.sum() == 1
    assert torch.allclose(fragments.depth[0, 63, 17], torch.tensor(1.05))
    (fragments.barycentric.sum() + fragments.depth.sum()).backward()
    assert torch.isfinite(pixels.grad).all() and torch.isfinite(depth.grad).all()


def test_degenerate_visible_face_takes_the_mean_of_its_corners():
    # as if another rasteriser (pytorch3d) had chosen the sliver at that pixel
    face_index = torch.full((1, 64, 64), -1)
    face_index[0, 63, 17] = 0
    pixels = SLIVER.clone().requires_grad_()
    fragments = interpolate_fragments(pixels, SLIVER_DEPTH, torch.tensor([[0, 1, 2]]), face_index)
    assert torch.allclose(fragments.barycentric[0, :, 63, 17], torch.full((3,), 1 / 3))
    assert torch.allclose(fragments.depth[0, 63, 17], SLIVER_DEPTH.mean())
    assert fragments.barycentric.sum().item() == pytest.approx(1.0)
    assert fragments.depth.sum().item() == pytest.approx(1.0127, rel=1e-4)
    (fragments.barycentric.sum() + fragments.depth.sum()).backward()
    assert torch.isfinite(pixels.grad).all()


# ---------------------------------------------------------------- gradients


def test_gradcheck_colours_and_depth():
    torch.manual_seed(3)
    renderer = Renderer(6)
    base_depth = (1 + 0.02 * torch.rand(1, 6, 6, dtype=torch.float64)).requires_grad_(True)
    colors = torch.rand(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    rotation = view(7.0, 13.0, 3.0, dtype=torch.float64).requires_grad_(True)
    translation = torch.tensor([[0.003, -0.002, 0.01]], dtype=torch.float64, requires_grad=True)

    def render(depth, colors, rotation, translation):
        output = renderer.render(depth, colors, rotation, translation)
        return output.image, output.depth

    assert torch.autograd.gradcheck(render, (base_depth, colors, rotation, translation), eps=1e-7, atol=1e-5)
    trans_map = torch.full((1, 1, 6, 6), 0.7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda t: renderer.render(base_depth, colors, rotation, translation, trans_map=t).image,
        (trans_map,),
        eps=1e-7,
        atol=1e-5,
    )


def test_clip_contour_gradient_rule():
    weights = torch.zeros(1, 8, 8)
    weights[0, 2:6, 1:7] = torch.rand(4, 6) + 0.5
    depth = torch.ones(1, 8, 8, requires_grad=True)
    (clip_contour_gradient(depth) * weights).sum().backward()
    has_gradient = weights[0] != 0
    padded = torch.nn.functional.pad(has_gradient[None, None].float(), (1, 1, 1, 1), mode="reflect")[0, 0] > 0.5
    neighbours_agree = (
        (padded[:-2, 1:-1] == has_gradient)
        & (padded[2:, 1:-1] == has_gradient)
        & (padded[1:-1, :-2] == has_gradient)
        & (padded[1:-1, 2:] == has_gradient)
    )
    assert torch.equal(depth.grad[0], weights[0] * neighbours_agree)
    assert depth.grad[0, 3, 3] == weights[0, 3, 3]  # interior keeps its gradient
    assert depth.grad[0, 2, 3] == 0  # the contour loses it
    assert torch.equal(clip_contour_gradient(depth.detach()), depth.detach())


# ---------------------------------------------------------------- shading


def test_normals_of_plane_and_sphere_cap():
    size = 64
    renderer = Renderer(size)
    plane = renderer.normals(torch.ones(1, size, size))
    assert torch.allclose(plane, torch.tensor([0.0, 0.0, 1.0]).view(1, 3, 1, 1).expand_as(plane), atol=1e-6)
    # the official normalisation divides by (length + 1e-7); the length is 4 * spacing^2 for a plane
    spacing = math.tan(math.radians(5)) / ((size - 1) / 2)
    official = renderer.normals(torch.ones(1, size, size, dtype=torch.float64), unit=False)
    assert torch.allclose(official[:, 2], torch.tensor(4 * spacing**2 / (4 * spacing**2 + 1e-7), dtype=torch.float64))
    # sphere of radius R centred on the axis at depth 1 + R, seen from its near side
    radius = 0.05
    rays = ray_directions(size)
    centre = torch.tensor([0.0, 0.0, 1.0 + radius], dtype=torch.float64)
    along = rays @ centre
    discriminant = along**2 - rays.pow(2).sum(-1) * (centre @ centre - radius**2)
    hit = discriminant > 0
    t = (along - discriminant.clamp(min=0).sqrt()) / rays.pow(2).sum(-1)
    depth = torch.where(hit, t, torch.full_like(t, 1.0 + radius))
    normals = renderer.normals(depth[None].float())[0].double()
    points = rays * t[..., None]
    expected = ((centre - points) / radius).permute(2, 0, 1)  # official normals point away from the camera
    inner = torch.zeros_like(hit)
    inner[2:-2, 2:-2] = True
    for shift_r in (-1, 0, 1):
        for shift_c in (-1, 0, 1):
            inner &= hit.roll((shift_r, shift_c), (0, 1))
    assert inner.sum() > 200
    angle_error = (normals * expected).sum(0).clamp(-1, 1)[inner].acos().rad2deg()
    assert angle_error.mean() < 1.0
    assert angle_error.max() < 3.0  # finite differences are least accurate at the steep rim


def test_lambertian_shading():
    normal = torch.tensor([0.0, 0.0, 1.0]).view(1, 3, 1, 1).expand(2, 3, 2, 2)
    shading = lambertian_shading(
        normal, torch.tensor([0.2, 0.5]), torch.tensor([0.8, 0.4]), torch.tensor([[0.0, 0.0, 2.0], [1.0, 0.0, 1.0]])
    )
    assert torch.allclose(shading[0], torch.full((1, 2, 2), 1.0))
    assert torch.allclose(shading[1], torch.full((1, 2, 2), 0.5 + 0.4 / math.sqrt(2)))
    back = lambertian_shading(normal[:1], torch.tensor([0.1]), torch.tensor([1.0]), torch.tensor([[0.0, 0.0, -1.0]]))
    assert torch.allclose(back, torch.full_like(back, 0.1))
    with pytest.raises(ValueError, match="ambient"):
        lambertian_shading(normal, torch.tensor([0.2]), torch.tensor([0.8, 0.4]), torch.zeros(2, 3))


# ---------------------------------------------------------------- bad input and backends


def test_bad_input_raises_clear_errors():
    renderer = Renderer(8)
    depth, colors = torch.ones(2, 8, 8), torch.rand(2, 3, 8, 8)
    rotation, translation = torch.zeros(2, 3), torch.zeros(2, 3)
    with pytest.raises(ValueError, match="depth must have shape"):
        renderer.render(torch.ones(2, 7, 8), colors, rotation, translation)
    with pytest.raises(ValueError, match="colors must have shape"):
        renderer.render(depth, torch.rand(3, 3, 8, 8), rotation, translation)
    with pytest.raises(ValueError, match="NaN"):
        renderer.render(torch.where(torch.rand(2, 8, 8) > 0.5, torch.nan, 1.0), colors, rotation, translation)
    with pytest.raises(ValueError, match="positive"):
        renderer.render(-depth, colors, rotation, translation)
    with pytest.raises(ValueError, match="rotation must have shape"):
        renderer.render(depth, colors, torch.zeros(2, 2), translation)
    with pytest.raises(ValueError, match="rotation contains NaN"):
        renderer.render(depth, colors, torch.full((2, 3), torch.inf), translation)
    with pytest.raises(ValueError, match="trans_map must have shape"):
        renderer.render(depth, colors, rotation, translation, trans_map=torch.ones(2, 8, 8))
    with pytest.raises(ValueError, match="backend"):
        Renderer(8, backend="opengl")
    with pytest.raises(ValueError, match="fov"):
        Renderer(8, fov=0.0)


@pytest.mark.skipif(importlib.util.find_spec("pytorch3d") is not None, reason="pytorch3d is installed")
def test_pytorch3d_backend_without_pytorch3d_says_how_to_install():
    with pytest.raises(ImportError, match="INSTALL.md"):
        Renderer(8, backend="pytorch3d")


@pytest.mark.skipif(importlib.util.find_spec("pytorch3d") is None, reason="pytorch3d is not installed")
def test_pytorch3d_backend_matches_torch_backend():
    torch.manual_seed(4)
    depth = 1 + 0.05 * torch.rand(2, 32, 32)
    colors = torch.rand(2, 3, 32, 32)
    rotation = torch.tensor([[5.0, 25.0, 0.0], [-10.0, -20.0, 3.0]])
    reference = Renderer(32).render(depth, colors, rotation, torch.zeros(2, 3))
    other = Renderer(32, backend="pytorch3d").render(depth, colors, rotation, torch.zeros(2, 3))
    assert (reference.mask != other.mask).float().mean() < 0.01
    agree = (reference.mask * other.mask) > 0
    assert torch.allclose(
        reference.image[agree.expand_as(reference.image)], other.image[agree.expand_as(other.image)], atol=1e-3
    )


def test_half_precision_inputs_render_like_float32():
    torch.manual_seed(5)
    renderer = Renderer(64)
    depth = 1 + 0.05 * torch.rand(2, 64, 64)
    colors = torch.rand(2, 3, 64, 64)
    rotation = torch.tensor([[5.0, 30.0, 0.0], [-5.0, -20.0, 0.0]])
    # the float32 render of the same (bf16-rounded) inputs
    depth, colors, rotation = depth.bfloat16().float(), colors.bfloat16().float(), rotation.bfloat16().float()
    reference = renderer.render(depth, colors, rotation, torch.zeros(2, 3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = renderer.render(depth.bfloat16(), colors.bfloat16(), rotation.bfloat16(), torch.zeros(2, 3).bfloat16())
    assert half.image.dtype == torch.bfloat16 and torch.isfinite(half.image.float()).all()
    agree = (reference.mask * half.mask.float()) > 0
    assert torch.equal(reference.mask, half.mask.float())
    assert (reference.image - half.image.float()).abs()[agree.expand_as(reference.image)].max() < 0.01
