"""StyleGAN2 generator and discriminator: shapes, FIR filtering, modulation, noise, I/O, official layout."""

import json
import math
import pickle
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from liftedgan_hf.checkpoints import CheckpointError
from liftedgan_hf.models.stylegan2 import (
    LIFTEDGAN_SLIM_CHANNELS,
    ModulatedConv2d,
    StyleGAN2Discriminator,
    StyleGAN2Generator,
    channel_list,
    make_fir_kernel,
    rosinality_channels,
    upfirdn2d,
)

SHAPES = json.loads((Path(__file__).parent / "data" / "official_state_dict_shapes.json").read_text())
OFFICIAL_GENERATOR = next(value for key, value in SHAPES.items() if key.startswith("generator"))


def tiny_generator(resolution=16, **kwargs):
    torch.manual_seed(0)
    channels = kwargs.pop("channels", [16, 16, 8, 8, 4, 4][: int(math.log2(resolution)) - 1])
    return StyleGAN2Generator(resolution=resolution, style_dim=8, n_mlp=2, channels=channels, **kwargs).eval()


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize(
    ("resolution", "channels"),
    [(4, [8]), (8, [8, 4]), (16, [16, 8, 4]), (32, [8, 8, 8, 8]), (64, [4, 8, 8, 16, 2])],
)
def test_generator_and_discriminator_shapes(resolution, channels):
    generator = tiny_generator(resolution, channels=channels)
    z = torch.randn(3, 8)
    images, features = generator(z, return_features=True)
    assert images.shape == (3, 3, resolution, resolution)
    assert features.shape == (3, channels[-1], resolution, resolution)
    assert generator.num_ws == 2 * int(math.log2(resolution)) - 2
    discriminator = StyleGAN2Discriminator(resolution=resolution, channels=channels)
    assert discriminator(images).shape == (3, 1)


def test_channel_tables():
    assert channel_list(LIFTEDGAN_SLIM_CHANNELS, 256) == [512, 512, 256, 128, 64, 32, 16]
    assert rosinality_channels(256) == [512, 512, 512, 512, 512, 256, 128]
    assert StyleGAN2Generator().config.channels is None  # default = the official slim table
    with pytest.raises(ValueError, match="power of two"):
        StyleGAN2Generator(resolution=48, channels=[8, 8, 8, 8])
    with pytest.raises(ValueError, match="channels must list 3"):
        StyleGAN2Generator(resolution=16, channels=[8, 8])


def test_official_key_layout_matches_json_exactly():
    state = StyleGAN2Generator().state_dict()
    state.pop("w_avg")
    assert {key: list(value.shape) for key, value in state.items()} == OFFICIAL_GENERATOR


# ---------------------------------------------------------------- FIR filtering


def test_fir_upsampling_equals_transposed_convolution():
    images = torch.randn(2, 3, 7, 5)
    kernel = make_fir_kernel([1, 3, 3, 1]) * 4
    up = upfirdn2d(images, kernel, up=2, pad=(2, 1))
    # independent: zero-insertion upsampling is a stride-2 transposed convolution with the flipped kernel
    weight = torch.flip(kernel, [0, 1]).expand(3, 1, 4, 4)
    reference = F.conv_transpose2d(images, weight, stride=2, groups=3)
    # transposed conv output is 2H+2; rosinality's padding (2, 1) keeps rows 1 .. 2H
    assert up.shape == (2, 3, 14, 10)
    assert torch.allclose(up, reference[:, :, 1:-1, 1:-1], atol=1e-6)


def test_fir_keeps_constant_images_constant():
    images = torch.full((1, 2, 8, 8), 0.7)
    up = upfirdn2d(images, make_fir_kernel([1, 3, 3, 1]) * 4, up=2, pad=(2, 1))
    assert torch.allclose(up[:, :, 2:-2, 2:-2], torch.full_like(up[:, :, 2:-2, 2:-2], 0.7), atol=1e-6)
    down = upfirdn2d(images, make_fir_kernel([1, 3, 3, 1]), down=2, pad=(1, 1))
    assert torch.allclose(down[:, :, 1:-1, 1:-1], torch.full_like(down[:, :, 1:-1, 1:-1], 0.7), atol=1e-6)


def test_fir_matches_naive_loop():
    images = torch.randn(1, 1, 5, 5)
    kernel = torch.rand(3, 3)
    result = upfirdn2d(images, kernel, pad=(1, 1))
    padded = F.pad(images, (1, 1, 1, 1))[0, 0]
    naive = torch.zeros(5, 5)
    for row in range(5):
        for col in range(5):
            for i in range(3):
                for j in range(3):  # true convolution: the kernel is flipped
                    naive[row, col] += padded[row + i, col + j] * kernel[2 - i, 2 - j]
    assert torch.allclose(result[0, 0], naive, atol=1e-6)


# ---------------------------------------------------------------- modulation and noise


def test_demodulation_keeps_unit_variance():
    torch.manual_seed(0)
    conv = ModulatedConv2d(64, 64, 3, style_dim=16)
    images = torch.randn(4, 64, 32, 32)
    out = conv(images, torch.randn(4, 16) * 3)
    assert 0.85 < out[:, :, 1:-1, 1:-1].std().item() < 1.15


def test_noise_modes_and_determinism():
    generator = tiny_generator()
    w = generator.mapping(torch.randn(2, 8))
    const_a = generator.synthesis(w, noise_mode="const")
    const_b = generator.synthesis(w, noise_mode="const")
    assert torch.equal(const_a, const_b)
    with torch.no_grad():
        for conv in generator.convs:
            conv.noise.weight.fill_(0.5)
        generator.conv1.noise.weight.fill_(0.5)
    random_a = generator.synthesis(w, noise_mode="random")
    random_b = generator.synthesis(w, noise_mode="random")
    assert not torch.allclose(random_a, random_b)
    none_a = generator.synthesis(w, noise_mode="none")
    with torch.no_grad():
        for conv in generator.convs:
            conv.noise.weight.zero_()
        generator.conv1.noise.weight.zero_()
    assert torch.allclose(none_a, generator.synthesis(w, noise_mode="const"), atol=1e-6)
    with pytest.raises(ValueError, match="noise_mode"):
        generator.synthesis(w, noise_mode="fresh")


def test_w_plus_and_style_mixing():
    generator = tiny_generator()
    w = generator.mapping(torch.randn(2, 8))
    w_plus = w[:, None].repeat(1, generator.num_ws, 1)
    assert torch.allclose(generator.synthesis(w), generator.synthesis(w_plus), atol=1e-6)
    other = generator.mapping(torch.randn(2, 8))
    mixed = generator.mix_styles(w, other, crossover=3)
    assert torch.equal(mixed[:, :3], w_plus[:, :3])
    assert torch.equal(mixed[:, 3:], other[:, None].expand(-1, generator.num_ws - 3, -1))
    with pytest.raises(ValueError, match="crossover"):
        generator.mix_styles(w, other, crossover=99)
    with pytest.raises(ValueError, match="w must be"):
        generator.synthesis(torch.randn(2, 5, 8))


def test_truncation_and_mean_w():
    generator = tiny_generator()
    mean = generator.mean_w(n=500, seed=1)
    assert torch.equal(mean, generator.mean_w(n=500, seed=1))
    generator.w_avg.copy_(mean)
    z = torch.randn(2, 8)
    assert torch.allclose(generator(z, truncation_psi=0.0), generator.synthesis(mean[None].expand(2, -1)), atol=1e-5)
    with pytest.raises(ValueError, match="z must have shape"):
        generator(torch.randn(2, 9))


def test_gradients_flow_to_parameters_and_w():
    generator = tiny_generator().train()
    w = generator.mapping(torch.randn(2, 8)).detach().requires_grad_(True)
    generator.synthesis(w).square().mean().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
    for name, parameter in generator.named_parameters():
        if name.startswith("style."):
            continue  # mapping network is not on the path from w
        assert parameter.grad is not None, name
    discriminator = StyleGAN2Discriminator(resolution=16, channels=[16, 8, 4])
    images = torch.randn(4, 3, 16, 16, requires_grad=True)
    discriminator(images).sum().backward()
    assert images.grad.abs().sum() > 0
    assert all(p.grad is not None for p in discriminator.parameters())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_is_finite(dtype):
    generator = tiny_generator().to(dtype)
    reference = tiny_generator()(torch.ones(2, 8))
    images = generator(torch.ones(2, 8, dtype=dtype))
    assert images.dtype == dtype and torch.isfinite(images).all()
    assert torch.allclose(images.float(), reference, atol=0.1 * reference.abs().max().item())
    discriminator = StyleGAN2Discriminator(resolution=16, channels=[16, 8, 4]).to(dtype)
    assert torch.isfinite(discriminator(images)).all()


# ---------------------------------------------------------------- saving and loading


def test_save_pretrained_round_trip_is_bit_exact(tmp_path):
    generator = tiny_generator()
    generator.w_avg.copy_(generator.mean_w(100))
    generator.save_pretrained(tmp_path / "g")
    assert (tmp_path / "g" / "diffusion_pytorch_model.safetensors").is_file()
    assert "library_name: liftedgan-hf" in (tmp_path / "g" / "README.md").read_text()
    loaded = StyleGAN2Generator.from_pretrained(tmp_path / "g").eval()
    for (name, value), (_, other) in zip(generator.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(value, other), name
    z = torch.randn(2, 8)
    assert torch.equal(generator(z, truncation_psi=0.5), loaded(z, truncation_psi=0.5))
    discriminator = StyleGAN2Discriminator(resolution=16, channels=[16, 8, 4])
    discriminator.save_pretrained(tmp_path / "d")
    loaded_d = StyleGAN2Discriminator.from_pretrained(tmp_path / "d")
    images = torch.randn(2, 3, 16, 16)
    assert torch.equal(discriminator(images), loaded_d(images))


def test_push_to_hub_uploads_folder_with_card(tmp_path, monkeypatch):
    import huggingface_hub

    uploaded = {}

    class Repo:
        repo_id = "someone/tiny-stylegan2"

    monkeypatch.setattr(huggingface_hub, "create_repo", lambda repo_id, **kwargs: Repo())

    def fake_upload(repo_id, folder_path, **kwargs):
        uploaded["repo_id"] = repo_id
        uploaded["files"] = sorted(path.name for path in Path(folder_path).iterdir())
        uploaded["card"] = (Path(folder_path) / "README.md").read_text()

    monkeypatch.setattr(huggingface_hub, "upload_folder", fake_upload)
    tiny_generator().push_to_hub("someone/tiny-stylegan2")
    assert uploaded["repo_id"] == "someone/tiny-stylegan2"
    assert uploaded["files"] == ["README.md", "config.json", "diffusion_pytorch_model.safetensors"]
    assert 'from_pretrained("someone/tiny-stylegan2")' in uploaded["card"]


# ---------------------------------------------------------------- rosinality / official checkpoints


def _official_random_state(seed=0):
    generator = torch.Generator().manual_seed(seed)
    state = {key: torch.randn(shape, generator=generator) for key, shape in OFFICIAL_GENERATOR.items()}
    fir = make_fir_kernel([1, 3, 3, 1]) * 4
    for key in state:
        if key.endswith("kernel"):
            state[key] = fir.clone()
    return state


def rosinality_reference(state, w, size=256):
    """An independent, direct transcription of rosinality's generator forward: per-sample modulated
    weights applied with grouped convolutions, FIR by zero-insertion and a full 2D convolution."""
    num_layers = 2 * int(math.log2(size)) - 3
    batch = w.shape[0]

    def modconv(prefix, x, style, demodulate=True, upsample=False):
        weight = state[f"{prefix}.weight"]
        _, out_c, in_c, k, _ = weight.shape
        s = F.linear(style, state[f"{prefix}.modulation.weight"] / math.sqrt(style.shape[1]))
        s = s + state[f"{prefix}.modulation.bias"]
        weight = weight / math.sqrt(in_c * k * k) * s.view(batch, 1, in_c, 1, 1)
        if demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(batch, out_c, 1, 1, 1)
        h, wd = x.shape[-2:]
        x = x.reshape(1, batch * in_c, h, wd)
        if upsample:
            weight = weight.transpose(1, 2).reshape(batch * in_c, out_c, k, k)
            out = F.conv_transpose2d(x, weight, stride=2, groups=batch)
            out = out.view(batch, out_c, *out.shape[-2:])
            return fir(out, state[f"{prefix}.blur.kernel"], 1, 1)
        out = F.conv2d(x, weight.reshape(batch * out_c, in_c, k, k), padding=k // 2, groups=batch)
        return out.view(batch, out_c, *out.shape[-2:])

    def fir(x, kernel, pad0, pad1, up=1):
        c = x.shape[1]
        if up > 1:
            z = torch.zeros(x.shape[0], c, x.shape[2] * up, x.shape[3] * up)
            z[:, :, ::up, ::up] = x
            x = z
        x = F.pad(x, (pad0, pad1, pad0, pad1))
        return F.conv2d(x, torch.flip(kernel, [0, 1]).expand(c, 1, 4, 4), groups=c)

    def styled(prefix, x, style, noise, upsample=False):
        x = modconv(f"{prefix}.conv", x, style, upsample=upsample)
        x = x + state[f"{prefix}.noise.weight"] * noise
        return F.leaky_relu(x + state[f"{prefix}.activate.bias"].view(1, -1, 1, 1), 0.2) * math.sqrt(2)

    def to_rgb(prefix, x, style, skip=None):
        out = modconv(f"{prefix}.conv", x, style, demodulate=False) + state[f"{prefix}.bias"]
        if skip is not None:
            out = out + fir(skip, state[f"{prefix}.upsample.kernel"], 2, 1, up=2)
        return out

    noises = [state[f"noises.noise_{i}"] for i in range(num_layers)]
    x = state["input.input"].repeat(batch, 1, 1, 1)
    x = styled("conv1", x, w, noises[0])
    skip = to_rgb("to_rgb1", x, w)
    for index in range(int(math.log2(size)) - 2):
        x = styled(f"convs.{2 * index}", x, w, noises[2 * index + 1], upsample=True)
        x = styled(f"convs.{2 * index + 1}", x, w, noises[2 * index + 2])
        skip = to_rgb(f"to_rgbs.{index}", x, w, skip)
    return skip, x


def rosinality_mapping(state, z, lr_mul=0.01):
    x = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)
    for index in range(1, 9):
        weight = state[f"style.{index}.weight"] * lr_mul / math.sqrt(z.shape[1])
        x = F.linear(x, weight)
        x = F.leaky_relu(x + state[f"style.{index}.bias"] * lr_mul, 0.2) * math.sqrt(2)
    return x


@torch.no_grad()
def test_official_checkpoint_loads_strictly_and_computes_the_same_function(tmp_path):
    state = _official_random_state()
    path = tmp_path / "stylegan2-ffhq-cropped-300000.pt"
    torch.save({"g_ema": state, "g": state, "latent_avg": torch.zeros(512)}, path)
    generator = StyleGAN2Generator.from_rosinality(path, w_avg_samples=1000)
    assert generator.config.resolution == 256 and generator.config.channels == [512, 512, 256, 128, 64, 32, 16]
    z = torch.randn(2, 512)
    w = generator.mapping(z)
    assert torch.allclose(w, rosinality_mapping(state, z), rtol=1e-4, atol=1e-4)
    image, features = generator.synthesis(w, return_features=True)
    reference_image, reference_features = rosinality_reference(state, w)
    scale = reference_image.abs().max()
    assert torch.allclose(image, reference_image, atol=1e-4 * scale, rtol=1e-4)
    assert torch.allclose(features, reference_features, atol=1e-4 * reference_features.abs().max(), rtol=1e-4)
    # w_avg is the mean of mapped codes
    assert torch.allclose(generator.w_avg, generator.mean_w(1000), atol=1e-6)
    # a bare state dict loads too
    bare = tmp_path / "bare.pt"
    torch.save(state, bare)
    assert torch.equal(StyleGAN2Generator.from_rosinality(bare, w_avg_samples=10).synthesis(w), image)


def test_bad_checkpoints_are_rejected_with_file_and_key(tmp_path):
    state = {key: value for key, value in tiny_generator().state_dict().items() if key != "w_avg"}

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupt.pt.*corrupt"):
        StyleGAN2Generator.from_rosinality(corrupt)

    missing = tmp_path / "missing.pt"
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        StyleGAN2Generator.from_rosinality(missing)

    listed = tmp_path / "list.pt"
    torch.save([1, 2, 3], listed)
    with pytest.raises(CheckpointError, match="list.pt.*expected a dict"):
        StyleGAN2Generator.from_rosinality(listed)

    wrong_dict = tmp_path / "wrong.pt"
    torch.save({"d": state}, wrong_dict)
    with pytest.raises(CheckpointError, match="wrong.pt.*no 'g_ema' entry"):
        StyleGAN2Generator.from_rosinality(wrong_dict)

    without_key = dict(state)
    del without_key["to_rgbs.0.bias"]
    path = tmp_path / "without.pt"
    torch.save({"g_ema": without_key}, path)
    with pytest.raises(CheckpointError, match=r"without.pt.*missing key to_rgbs.0.bias"):
        StyleGAN2Generator.from_rosinality(path)

    reshaped = dict(state)
    reshaped["conv1.noise.weight"] = torch.zeros(2)
    reshaped["surprise"] = torch.zeros(1)
    path = tmp_path / "reshaped.pt"
    torch.save({"g_ema": reshaped}, path)
    with pytest.raises(CheckpointError) as error:
        StyleGAN2Generator.from_rosinality(path)
    assert "reshaped.pt" in str(error.value)
    assert "conv1.noise.weight has shape (2,), expected (1,)" in str(error.value)
    assert "unexpected key surprise" in str(error.value)

    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    evil = tmp_path / "evil.pt"
    with evil.open("wb") as handle:
        pickle.dump({"g_ema": Evil()}, handle)
    with pytest.raises(CheckpointError, match="evil.pt"):
        StyleGAN2Generator.from_rosinality(evil)


def test_discriminator_from_rosinality(tmp_path):
    discriminator = StyleGAN2Discriminator(resolution=16, channels=[16, 8, 4])
    path = tmp_path / "ckpt.pt"
    torch.save({"d": discriminator.state_dict(), "g_ema": {}}, path)
    loaded = StyleGAN2Discriminator.from_rosinality(path)
    assert loaded.config.channels == [16, 8, 4]
    images = torch.randn(2, 3, 16, 16)
    assert torch.equal(loaded(images), discriminator(images))
    with pytest.raises(ValueError, match="images must be"):
        loaded(torch.randn(2, 3, 8, 8))
