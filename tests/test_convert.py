"""Converting the official release: key layout, error reporting, and equality with the official equations.

The official weights cannot be downloaded here, so random tensors with the official key names and
shapes (tests/data/official_state_dict_shapes.json) stand in for them. The expected values are computed
by an independent re-implementation of the official estimation equations in this file.
"""

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from liftedgan_hf import LiftedGAN
from liftedgan_hf.checkpoints import CheckpointError
from liftedgan_hf.convert import FACE_EMBEDDING_FILE, convert_official, main
from liftedgan_hf.models.lifting import DepthNet, StyleComposeNet, StyleDecomposeNet, TransformationNet
from liftedgan_hf.models.stylegan2 import StyleGAN2Generator

SHAPES = json.loads((Path(__file__).parent / "data" / "official_state_dict_shapes.json").read_text())


def _entry(prefix: str) -> dict:
    return next(shapes for name, shapes in SHAPES.items() if name.startswith(prefix))


def _random_state_dict(shapes: dict, generator: torch.Generator) -> dict:
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.5
    return state


def _rosinality_generator_state(generator: torch.Generator) -> dict:
    state = _random_state_dict(_entry("generator"), generator)
    # The FIR kernels are fixed buffers in a real checkpoint: [1,3,3,1] outer product, gain 4.
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    fir = taps[:, None] * taps[None, :]
    for key in state:
        if key.endswith("blur.kernel") or key.endswith("upsample.kernel"):
            state[key] = fir / fir.sum() * 4
        elif key.startswith("style.") and key.endswith(".weight"):
            state[key] = state[key] / 0.01  # rosinality stores mapping weights divided by lr_mlp
    return state


@pytest.fixture(scope="module")
def official_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("official")
    generator = torch.Generator().manual_seed(0)
    stylegan2 = {"g_ema": _rosinality_generator_state(generator), "latent_avg": torch.zeros(512)}
    lifting = {
        "netD": _random_state_dict(_entry("netD"), generator),
        "netT": _random_state_dict(_entry("netT"), generator),
        "netSD": _random_state_dict(_entry("netSD"), generator),
        "netSC": _random_state_dict(_entry("netSC"), generator),
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
        "global_step": 50_000,
        "epoch": 10,
    }
    embedding = {
        "model_state_dict": {
            f"module.{key}": value for key, value in _random_state_dict(_entry("FaceEmbedding"), generator).items()
        }
    }
    paths = {
        "stylegan2": folder / "stylegan2-ffhq-cropped-300000.pt",
        "liftedgan": folder / "checkpoint_010.pth",
        "face_embedding": folder / "lresnet_casia.pth.tar",
    }
    torch.save(stylegan2, paths["stylegan2"])
    torch.save(lifting, paths["liftedgan"])
    torch.save(embedding, paths["face_embedding"])
    return paths, lifting


@pytest.fixture(scope="module")
def converted(official_files, tmp_path_factory):
    paths, _ = official_files
    output = tmp_path_factory.mktemp("converted") / "liftedgan-ffhq"
    main(
        [
            "--liftedgan", str(paths["liftedgan"]),
            "--stylegan2", str(paths["stylegan2"]),
            "--face-embedding", str(paths["face_embedding"]),
            "--output", str(output),
            "--latent-samples", "2000",
        ]
    )  # fmt: skip
    return output


# ---------------------------------------------------------------- the official equations, written out


def official_kernel(radius: int = 10, sigma: float = 4.0) -> torch.Tensor:
    grid = torch.arange(2 * radius + 1, dtype=torch.float32) - radius
    kernel = torch.exp(-((grid[:, None] / (2 * sigma)) ** 2)) * torch.exp(-((grid[None, :] / (2 * sigma)) ** 2))
    return (kernel / kernel.sum())[None, None]


def official_points(depth: torch.Tensor, fov: float = 10.0) -> torch.Tensor:
    size = depth.shape[-1]
    focal = (size - 1) / 2 / math.tan(math.radians(fov) / 2)
    centre = (size - 1) / 2
    rows, cols = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    x = (cols - centre) / focal
    y = (rows - centre) / focal
    return torch.stack([x.expand_as(depth), y.expand_as(depth), torch.ones_like(depth)], dim=-1) * depth[..., None]


def official_normals(depth: torch.Tensor) -> torch.Tensor:
    points = official_points(depth)
    centre = points[:, 1:-1, 1:-1]
    previous_row, next_row = points[:, :-2, 1:-1], points[:, 2:, 1:-1]
    previous_col, next_col = points[:, 1:-1, :-2], points[:, 1:-1, 2:]
    normal = (
        torch.cross(previous_col - centre, previous_row - centre, dim=3)
        + torch.cross(previous_row - centre, next_col - centre, dim=3)
        + torch.cross(next_col - centre, next_row - centre, dim=3)
        + torch.cross(next_row - centre, previous_col - centre, dim=3)
    )
    normal = F.pad(normal.permute(0, 3, 1, 2), (1, 1, 1, 1), mode="replicate")
    return normal / (normal.pow(2).sum(1, keepdim=True).sqrt() + 1e-7)  # official: not quite unit length


def official_estimate(networks: dict, generator: StyleGAN2Generator, w: torch.Tensor) -> dict:
    _, light, view = networks["netSD"](w)
    neutral_light = torch.stack([light[:, 0], light[:, 1], light[:, 2] * 0, light[:, 3] * 0], 1)
    w0 = networks["netSC"](w, neutral_light, 0 * view)
    texture, features = generator.synthesis(w0, noise_mode="const", return_features=True)
    depth = networks["netD"](w0, features).squeeze(1)
    depth = depth - depth.view(depth.shape[0], -1).mean(1).view(-1, 1, 1)
    depth = depth.tanh()
    depth = (1 + depth) / 2 * 1.1 + (1 - depth) / 2 * 0.9
    border = F.pad(torch.zeros(1, depth.shape[1], depth.shape[2] - 4), (2, 2), value=1)
    depth = depth * (1 - border) + border * 1.05
    trans = torch.sigmoid(networks["netT"](w0) + 5)
    face = (depth[:, None] <= 1.04).float()
    trans = face + (1 - face) * trans
    trans = F.conv2d(F.pad(trans, (10, 10, 10, 10), mode="reflect"), official_kernel())
    trans = F.pad(trans[:, :, 1:-1, 2:-2], (2, 2, 1, 1), value=0.0)
    ambient, diffuse = light[:, :1] / 2 + 0.5, light[:, 1:2] / 2 + 0.5
    normal = official_normals(depth)
    shading = ambient[..., None, None] + diffuse[..., None, None] * normal[:, 2:3].clamp(min=0)
    albedo = (texture / 2 + 0.5) / (shading + 1e-8) * 2 - 1
    return {
        "depth": depth,
        "albedo": albedo,
        "trans_map": trans,
        "canonical_texture": texture,
        "rotation": view[:, :3] * 60,
        "translation": torch.cat([view[:, 3:5] * 0.1, view[:, 5:] * 0.01], 1),
        "light": torch.cat([ambient, diffuse, light[:, 2:]], 1),
    }


# ---------------------------------------------------------------- tests


class UnsafePayload:
    """An arbitrary pickled object: loading it would need unsafe unpickling."""


@torch.no_grad()
def test_converted_model_matches_official_equations(official_files, converted):
    paths, lifting = official_files
    model = LiftedGAN.from_pretrained(converted).eval()
    networks = {
        "netSD": StyleDecomposeNet(),
        "netSC": StyleComposeNet(),
        "netD": DepthNet(),
        "netT": TransformationNet(),
    }
    for name, network in networks.items():
        network.load_state_dict(lifting[name], strict=True)
        network.eval()
    generator = StyleGAN2Generator.from_rosinality(paths["stylegan2"], w_avg_samples=100).eval()

    w = model.style_codes(seed=[3, 11], truncation_psi=0.7)
    expected = official_estimate(networks, generator, w)
    output = model.generate(w=w)
    for field, value in expected.items():
        assert torch.allclose(getattr(output, field), value, atol=1e-3, rtol=1e-3), field
    # truncation towards the stored w mean, as the official sampling does
    z = model.seeds_to_z([3, 11])
    truncated = model.w_mean + 0.7 * (generator.mapping(z) - model.w_mean)
    assert torch.allclose(w, truncated, atol=1e-5)


def test_converted_folder_contents(converted):
    names = {path.name for path in converted.iterdir()}
    assert {"config.json", "diffusion_pytorch_model.safetensors", "README.md", FACE_EMBEDDING_FILE} <= names
    card = (converted / "README.md").read_text()
    assert card.startswith("---\nlicense: mit")
    assert "pipeline_tag: unconditional-image-generation" in card
    assert "official" in card.lower()
    model = LiftedGAN.from_pretrained(converted)
    # latent statistics are stored, not recomputed at load time
    assert model.w_std.abs().sum() > 0
    assert not torch.allclose(model.w_mean, torch.zeros_like(model.w_mean))


def test_missing_and_unexpected_keys_are_named(official_files, tmp_path):
    paths, lifting = official_files
    broken = {name: dict(value) if isinstance(value, dict) else value for name, value in lifting.items()}
    del broken["netD"]["head.6.bias"]
    broken["netT"]["extra.weight"] = torch.zeros(3)
    broken["netSC"]["model.mlp.0.weight"] = torch.zeros(3, 3)
    bad = tmp_path / "bad.pth"
    torch.save(broken, bad)
    with pytest.raises(CheckpointError) as error:
        convert_official(bad, paths["stylegan2"], tmp_path / "out", latent_samples=10)
    message = str(error.value)
    assert "bad.pth" in message
    assert "missing key netD.head.6.bias" in message
    assert "unexpected key netT.extra.weight" in message
    assert "netSC.model.mlp.0.weight has shape (3, 3)" in message
    assert not (tmp_path / "out").exists()


def test_missing_network_and_unsafe_file(official_files, tmp_path):
    paths, lifting = official_files
    partial = tmp_path / "partial.pth"
    torch.save({key: value for key, value in lifting.items() if key != "netSD"}, partial)
    with pytest.raises(CheckpointError, match="missing network 'netSD'"):
        convert_official(partial, paths["stylegan2"], tmp_path / "out", latent_samples=10)

    unsafe = tmp_path / "unsafe.pth"
    torch.save({"netD": UnsafePayload()}, unsafe)
    with pytest.raises(CheckpointError, match="unsafe.pth.*refused"):
        convert_official(unsafe, paths["stylegan2"], tmp_path / "out", latent_samples=10)

    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt.pth.*corrupt"):
        convert_official(corrupt, paths["stylegan2"], tmp_path / "out", latent_samples=10)
    assert not (tmp_path / "out").exists()


def test_command_line_reports_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "--liftedgan",
                str(tmp_path / "nope.pth"),
                "--stylegan2",
                str(tmp_path / "nope.pt"),
                "--output",
                str(tmp_path / "o"),
            ]
        )
    assert exit_info.value.code == 2
    assert "nope" in capsys.readouterr().err
