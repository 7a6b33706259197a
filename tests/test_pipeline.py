"""The LiftedGAN hub model: generation, re-rendering, 3D outputs, files, validation, saving."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from liftedgan_hf import LiftedGAN, LiftedGANOutput


def test_generate_shapes_and_ranges(tiny_liftedgan):
    output = tiny_liftedgan.generate(seed=[0, 1, 2])
    assert isinstance(output, LiftedGANOutput)
    size, style_dim = 32, 16
    expected = {
        "image": (3, 3, size, size),
        "canonical_texture": (3, 3, size, size),
        "albedo": (3, 3, size, size),
        "depth": (3, size, size),
        "normal": (3, 3, size, size),
        "shading": (3, 1, size, size),
        "trans_map": (3, 1, size, size),
        "rotation": (3, 3),
        "translation": (3, 3),
        "light": (3, 4),
        "w": (3, style_dim),
        "w0": (3, style_dim),
        "mask": (3, 1, size, size),
        "rendered_depth": (3, size, size),
    }
    assert {key: tuple(value.shape) for key, value in output.items()} == expected
    assert output.depth.min() >= 0.9 and output.depth.max() <= 1.1
    assert torch.all(output.depth[:, :, :2] == 1.05) and torch.all(output.depth[:, :, -2:] == 1.05)
    assert output.trans_map.min() >= 0 and output.trans_map.max() <= 1
    assert torch.all(output.trans_map[:, :, 0] == 0) and torch.all(output.trans_map[:, :, :, :2] == 0)
    assert torch.allclose(output.normal.norm(dim=1), torch.ones(3, size, size), atol=1e-5)
    assert output.light[:, :2].min() >= 0 and output.light[:, :2].max() <= 1
    assert output.rotation.abs().max() <= 60


def test_generate_is_deterministic_and_seed_equals_z(tiny_liftedgan):
    first = tiny_liftedgan.generate(seed=[5, 7])
    second = tiny_liftedgan.generate(seed=[5, 7])
    assert torch.equal(first.image, second.image)
    single = tiny_liftedgan.generate(seed=7)
    assert torch.allclose(single.image[0], first.image[1], atol=1e-5)
    from_z = tiny_liftedgan.generate(z=tiny_liftedgan.seeds_to_z([5, 7]))
    assert torch.allclose(from_z.image, first.image, atol=1e-6)
    from_w = tiny_liftedgan.generate(w=first.w)
    assert torch.allclose(from_w.image, first.image, atol=1e-6)


def test_truncation_pulls_towards_the_mean(tiny_liftedgan):
    full = tiny_liftedgan.generate(seed=3, truncation_psi=1.0).w
    none = tiny_liftedgan.generate(seed=3, truncation_psi=1e-6).w
    half = tiny_liftedgan.generate(seed=3, truncation_psi=0.5).w
    assert torch.allclose(none[0], tiny_liftedgan.w_mean, atol=1e-4)
    assert torch.allclose(half, (full + tiny_liftedgan.w_mean) / 2, atol=1e-5)


def test_predicted_view_and_light_are_used_by_default(tiny_liftedgan):
    output = tiny_liftedgan.generate(seed=[1, 2])
    face = tiny_liftedgan.estimate(output.w)
    rotation, translation = tiny_liftedgan.view_from_code(face.view_code)
    assert torch.allclose(output.rotation, rotation)
    assert torch.allclose(output.translation, translation)
    assert torch.allclose(output.light, tiny_liftedgan.light_from_code(face.light_code))
    # light and view codes convert back and forth
    assert torch.allclose(tiny_liftedgan.view_to_code(rotation, translation), face.view_code, atol=1e-6)
    assert torch.allclose(tiny_liftedgan.light_to_code(output.light), face.light_code, atol=1e-6)


def test_pose_and_light_control(tiny_liftedgan):
    output = tiny_liftedgan.generate(seed=[0, 1], yaw=30.0, pitch=-10.0, roll=0.0, light=[0.3, 0.6, 0.5, -0.2])
    assert torch.allclose(output.rotation, torch.tensor([[-10.0, 30.0, 0.0]] * 2))
    code = torch.tensor([-10.0, 30.0]) / 60
    expected_translation = torch.tensor([math.sin(code[1]) * 0.1 * 0.1, -math.sin(code[0]) * 0.2 * 0.1, 0.0])
    assert torch.allclose(output.translation, expected_translation.expand(2, 3), atol=1e-6)
    assert torch.allclose(output.light, torch.tensor([[0.3, 0.6, 0.5, -0.2]] * 2))
    per_face = tiny_liftedgan.generate(seed=[0, 1], yaw=[10.0, -20.0])
    assert torch.allclose(per_face.rotation[:, 1], torch.tensor([10.0, -20.0]))
    predicted = tiny_liftedgan.generate(seed=[0, 1])
    assert torch.allclose(per_face.rotation[:, 0], predicted.rotation[:, 0])  # pitch kept


def test_render_reuses_the_canonical_face_without_networks(tiny_liftedgan, monkeypatch):
    output = tiny_liftedgan.generate(seed=[4], yaw=20.0)

    def forbidden(*args, **kwargs):
        raise AssertionError("a network ran during render()")

    for name in ("generator", "style_decompose", "style_compose", "depth_net", "trans_net"):
        monkeypatch.setattr(getattr(tiny_liftedgan, name), "forward", forbidden)
    monkeypatch.setattr(tiny_liftedgan.generator, "synthesis", forbidden)
    again = tiny_liftedgan.render(output, yaw=20.0)
    assert torch.allclose(again.image, output.image, atol=1e-6)
    turned = tiny_liftedgan.render(output, yaw=-25.0, light=[0.5, 0.5, 0.0, 0.0])
    assert torch.equal(turned.depth, output.depth) and torch.equal(turned.albedo, output.albedo)
    assert not torch.allclose(turned.image, output.image)
    assert turned.rotation[0, 1] == -25.0


def test_render_with_the_same_light_reuses_the_shading(tiny_liftedgan, monkeypatch):
    output = tiny_liftedgan.generate(seed=[3, 5], light=[0.3, 0.6, -0.4, 0.2])
    recomputed = tiny_liftedgan.render(output, yaw=30.0, pitch=-10.0, light=output.light)

    def forbidden(*args, **kwargs):
        raise AssertionError("shading was recomputed for an unchanged light")

    monkeypatch.setattr(tiny_liftedgan, "shade", forbidden)
    reused = tiny_liftedgan.render(output, yaw=30.0, pitch=-10.0)
    assert reused.shading is output.shading and reused.normal is output.normal
    assert torch.allclose(reused.image, recomputed.image, atol=1e-5)
    assert torch.allclose(reused.normal, recomputed.normal, atol=1e-5)
    assert torch.allclose(reused.shading, recomputed.shading, atol=1e-6)
    assert not torch.allclose(reused.image, output.image)


def test_renders_match_the_renderer_directly(tiny_liftedgan):
    output = tiny_liftedgan.generate(seed=2, yaw=15.0, light=[0.4, 0.5, 0.3, 0.1])
    normal = tiny_liftedgan.renderer.normals(output.depth, unit=False)
    direction = torch.tensor([0.3, 0.1, 1.0]) / math.sqrt(0.09 + 0.01 + 1)
    shading = 0.4 + 0.5 * (normal * direction.view(1, 3, 1, 1)).sum(1, keepdim=True).clamp(min=0)
    assert torch.allclose(output.shading, shading, atol=1e-5)
    texture = (output.albedo / 2 + 0.5) * shading * 2 - 1
    direct = tiny_liftedgan.renderer.render(
        output.depth, texture, output.rotation, output.translation, output.trans_map
    )
    assert torch.allclose(output.image, direct.image, atol=1e-5)


def test_bad_arguments_fail_before_any_work(tiny_liftedgan):
    cases = [
        ({}, ValueError, "exactly one"),
        ({"seed": 1, "z": torch.zeros(1, 16)}, ValueError, "exactly one"),
        ({"seed": -1}, ValueError, "seeds must be in"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"seed": [1, "a"]}, TypeError, "seeds must be ints"),
        ({"seed": 1, "truncation_psi": 0.0}, ValueError, "truncation_psi"),
        ({"seed": 1, "truncation_psi": float("nan")}, ValueError, "truncation_psi"),
        ({"seed": 1, "yaw": 95.0}, ValueError, "yaw must be within"),
        ({"seed": 1, "yaw": float("nan")}, ValueError, "yaw must be finite"),
        ({"seed": 1, "pitch": float("inf")}, ValueError, "pitch must be finite"),
        ({"seed": [1, 2], "yaw": [1.0, 2.0, 3.0]}, ValueError, "yaw has 3 values"),
        ({"seed": 1, "light": [1.5, 0.5, 0, 0]}, ValueError, "ambient and diffuse"),
        ({"seed": 1, "light": [0.5, 0.5, 0]}, ValueError, "light must be"),
        ({"z": torch.zeros(2, 15)}, ValueError, "z must have shape"),
        ({"w": torch.full((1, 16), float("nan"))}, ValueError, "NaN"),
        ({"w": [[0.0] * 16]}, TypeError, "w must be a torch.Tensor"),
        ({"w": torch.zeros(1, 16, device="meta")}, ValueError, "model is on cpu"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            tiny_liftedgan.generate(**kwargs)
    output = tiny_liftedgan.generate(seed=0)
    with pytest.raises(ValueError, match="roll must be within"):
        tiny_liftedgan.render(output, roll=200.0)
    with pytest.raises(TypeError, match="LiftedGANOutput"):
        tiny_liftedgan.render({"image": output.image})


def test_pil_and_visualisations(tiny_liftedgan):
    output = tiny_liftedgan.generate(seed=[0, 1])
    for field in ("image", "canonical_texture", "albedo", "depth", "normal", "shading", "trans_map", "rendered_depth"):
        pictures = output.to_pil(field)
        assert len(pictures) == 2 and pictures[0].size == (32, 32)
    depth_picture = np.asarray(output.depth_image()[0], dtype=np.float32)
    nearest = output.depth[0].argmin()
    assert depth_picture.reshape(-1)[nearest] == 255  # near is bright
    normal_picture = np.asarray(output.normal_image()[0])
    assert normal_picture.shape == (32, 32, 3)
    with pytest.raises(ValueError, match="unknown output field"):
        output.to_pil("nothing")


def test_mesh_export(tiny_liftedgan, tmp_path):
    import trimesh

    output = tiny_liftedgan.generate(seed=[0, 1])
    for suffix in (".glb", ".obj", ".ply"):
        path = tiny_liftedgan.save_mesh(output, tmp_path / f"face{suffix}", index=1)
        mesh = trimesh.load(path, force="mesh", process=False)
        assert len(mesh.vertices) == 32 * 32
        assert len(mesh.faces) == 2 * 31 * 31
    mesh = trimesh.load(tiny_liftedgan.save_mesh(output, tmp_path / "face.ply", index=1), process=False)
    # vertices are the lifted canonical depth, in the y-up, z-towards-viewer frame
    points = tiny_liftedgan.renderer.depth_to_points(output.depth[1:2])[0].reshape(-1, 3).double().numpy()
    assert np.allclose(mesh.vertices, points * np.array([1, -1, -1]), atol=1e-6)
    colors = ((output.albedo[1] / 2 + 0.5).clamp(0, 1) * 255).round().permute(1, 2, 0).reshape(-1, 3).numpy()
    assert np.abs(mesh.visual.vertex_colors[:, :3].astype(float) - colors).max() <= 1
    face_only = trimesh.load(output.save_mesh(tmp_path / "only.ply", face_only=True), process=False)
    assert len(face_only.faces) < 2 * 31 * 31
    with pytest.raises(ValueError, match="suffix"):
        output.save_mesh(tmp_path / "face.stl")
    with pytest.raises(ValueError, match="out of range"):
        output.save_mesh(tmp_path / "face.glb", index=5)
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def test_animations_and_interpolation(tiny_liftedgan, tmp_path):
    output = tiny_liftedgan.generate(seed=[0, 1])
    gif = tiny_liftedgan.rotation_video(output, tmp_path / "turn.gif", yaws=[-30, 0, 30], index=1)
    with Image.open(gif) as animation:
        assert animation.n_frames == 4  # there and back
        assert animation.size == (32, 32)
    mp4 = tiny_liftedgan.relight_video(output, tmp_path / "light.mp4", angles=[-45, 0, 45])
    assert mp4.stat().st_size > 0 and mp4.read_bytes()[4:8] == b"ftyp"
    frames = tiny_liftedgan.relight_frames(output, angles=[-45, 45])
    assert np.abs(np.asarray(frames[0], float) - np.asarray(frames[1], float)).mean() > 0.5
    with pytest.raises(ValueError, match="suffix"):
        tiny_liftedgan.rotation_video(output, tmp_path / "turn.avi")
    with pytest.raises(ValueError, match="light angles"):
        tiny_liftedgan.relight_frames(output, angles=[90])
    path = tiny_liftedgan.interpolate(3, 9, steps=5)
    ends = tiny_liftedgan.generate(seed=[3, 9])
    assert path.w.shape == (5, 16)
    assert torch.allclose(path.w[0], ends.w[0], atol=1e-6) and torch.allclose(path.w[-1], ends.w[1], atol=1e-6)
    assert torch.allclose(path.w[2], (ends.w[0] + ends.w[1]) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="steps"):
        tiny_liftedgan.interpolate(3, 9, steps=1)


def test_save_and_load_round_trip(tiny_liftedgan, tmp_path):
    tiny_liftedgan.save_pretrained(tmp_path / "model")
    files = {path.name for path in (tmp_path / "model").iterdir()}
    assert files == {"config.json", "diffusion_pytorch_model.safetensors", "README.md"}
    card = (tmp_path / "model" / "README.md").read_text()
    for needle in (
        "license: mit",
        "library_name: liftedgan-hf",
        "pipeline_tag: unconditional-image-generation",
        "## Limitations",
        "## Risks of synthetic faces",
        "## Training data",
        "## Evaluation",
    ):
        assert needle in card
    loaded = LiftedGAN.from_pretrained(tmp_path / "model").eval()
    assert torch.equal(loaded.w_mean, tiny_liftedgan.w_mean) and torch.equal(loaded.w_std, tiny_liftedgan.w_std)
    assert torch.equal(loaded.generate(seed=[0, 3]).image, tiny_liftedgan.generate(seed=[0, 3]).image)
    assert not any(parameter.requires_grad for parameter in loaded.generator.parameters())
    half = LiftedGAN.from_pretrained(tmp_path / "model", dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16
    assert half.generate(seed=0).image.dtype == torch.bfloat16
    double = half.to(torch.float64)
    assert double.dtype == torch.float64 and double.device == torch.device("cpu")
    assert double.generate(seed=0).image.dtype == torch.float64


def test_loading_a_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(OSError):
        LiftedGAN.from_pretrained(tmp_path / "empty")
