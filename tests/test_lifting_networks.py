"""Lifting networks and face embedding: the official key layout, shapes, semantics, loading."""

import json
import pickle
from pathlib import Path

import pytest
import torch

from liftedgan_hf.checkpoints import CheckpointError
from liftedgan_hf.models.face_embedding import LResNet, load_face_embedding
from liftedgan_hf.models.lifting import (
    CodeToGrid,
    DepthNet,
    SingleOutputConv2d,
    StyleComposeNet,
    StyleDecomposeNet,
    TransformationNet,
    _plus_pointwise_conv,
    nearest_upsample_conv3x3,
)

SHAPES = json.loads((Path(__file__).parent / "data" / "official_state_dict_shapes.json").read_text())


def official(prefix):
    return next(value for key, value in SHAPES.items() if key.startswith(prefix))


@pytest.mark.parametrize(
    ("network", "prefix"),
    [
        (StyleDecomposeNet, "netSD "),
        (StyleComposeNet, "netSC "),
        (DepthNet, "netD "),
        (TransformationNet, "netT "),
        (LResNet, "FaceEmbedding"),
    ],
)
def test_default_sizes_have_the_official_keys_and_shapes(network, prefix):
    expected = official(prefix)
    if prefix == "FaceEmbedding":
        expected = {key.removeprefix("module."): shape for key, shape in expected.items()}
    state = network().state_dict()
    assert {key: list(value.shape) for key, value in state.items()} == expected
    random_state = {key: torch.randn(shape) if shape else torch.tensor(3) for key, shape in expected.items()}
    network().load_state_dict(random_state, strict=True)


def test_official_parameter_counts():
    counts = {
        name: sum(p.numel() for p in net().parameters())
        for name, net in (
            ("netD", DepthNet),
            ("netT", TransformationNet),
            ("netSD", StyleDecomposeNet),
            ("netSC", StyleComposeNet),
        )
    }
    assert round(counts["netD"] / 1e6, 2) == 11.19
    assert round(counts["netT"] / 1e6, 2) == 2.94
    assert round(counts["netSD"] / 1e6, 2) == 2.63
    assert round(counts["netSC"] / 1e6, 2) == 3.70


def test_decompose_and_compose_at_official_size():
    torch.manual_seed(0)
    decompose, compose = StyleDecomposeNet().eval(), StyleComposeNet().eval()
    w = torch.randn(3, 512)
    neutral, light, view = decompose(w)
    assert neutral.shape == (3, 512) and light.shape == (3, 4) and view.shape == (3, 6)
    assert light.abs().max() < 1 and view.abs().max() < 1  # tanh outputs
    w0 = compose(w, light, view)
    assert w0.shape == (3, 512)
    assert not torch.allclose(compose(w, light, torch.zeros_like(view)), w0)  # the view matters
    assert decompose.model_style.mlp[1].num_groups == 128  # GroupNorm groups = channels / 4
    with pytest.raises(ValueError, match="light must have shape"):
        compose(w, light[:, :3], view)


def test_decoders_at_tiny_size():
    torch.manual_seed(0)
    depth_net = DepthNet(style_dim=16, image_size=32, inject_channels=4, code_dim=16, base_channels=8)
    trans_net = TransformationNet(style_dim=16, image_size=32, code_dim=8, base_channels=8)
    w0 = torch.randn(2, 16)
    features = torch.randn(2, 4, 32, 32)
    assert torch.equal(depth_net(w0, features), torch.zeros(2, 1, 32, 32))  # a new D_S starts flat
    torch.nn.init.normal_(depth_net.head[-1].weight)
    depth = depth_net(w0, features)
    assert depth.shape == (2, 1, 32, 32)
    assert not torch.allclose(depth_net(w0, torch.zeros_like(features)), depth)  # the injection is used
    assert trans_net(w0).shape == (2, 1, 32, 32)
    assert [m.num_groups for m in depth_net.network if isinstance(m, torch.nn.GroupNorm)] == [
        4,
        4,
        2,
        2,
    ]  # 16 then 8 channels
    with pytest.raises(ValueError, match="features must have shape"):
        depth_net(w0, torch.randn(2, 4, 16, 16))
    with pytest.raises(ValueError, match="image_size"):
        DepthNet(image_size=48)


def assert_same_layer(fast, plain, inputs):
    """``fast`` takes ``plain``'s weights by name and matches its output and every gradient."""
    assert fast.state_dict().keys() == plain.state_dict().keys()
    plain.load_state_dict(fast.state_dict())
    inputs.requires_grad_(True)
    fast_output, plain_output = fast(inputs), plain(inputs)
    assert fast_output.shape == plain_output.shape
    assert torch.allclose(fast_output, plain_output, atol=1e-12)
    upstream = torch.randn_like(plain_output)
    fast_grads = torch.autograd.grad(fast_output, [inputs, *fast.parameters()], upstream)
    plain_grads = torch.autograd.grad(plain_output, [inputs, *plain.parameters()], upstream)
    for fast_grad, plain_grad in zip(fast_grads, plain_grads):
        assert torch.allclose(fast_grad, plain_grad, atol=1e-10)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_single_output_conv_equals_a_plain_convolution(bias, memory_format):
    torch.manual_seed(0)
    inputs = torch.randn(3, 6, 9, 11, dtype=torch.float64).contiguous(memory_format=memory_format)
    plain = torch.nn.Conv2d(6, 1, 5, 1, 2, bias=bias).double()
    assert_same_layer(SingleOutputConv2d(6, 5, bias=bias).double(), plain, inputs)


@pytest.mark.parametrize("bias", [True, False])
def test_code_to_grid_equals_a_transposed_convolution(bias):
    torch.manual_seed(0)
    fast = CodeToGrid(6, 5, bias=bias).double()
    plain = torch.nn.ConvTranspose2d(6, 5, 4, 1, 0, bias=bias).double()
    assert_same_layer(fast, plain, torch.randn(3, 6, 1, 1, dtype=torch.float64))
    assert fast(torch.randn(3, 6, 1, 1, dtype=torch.float64)).shape == (3, 5, 4, 4)
    larger = torch.randn(2, 6, 3, 3, dtype=torch.float64)  # not a 1x1 code: the convolution itself
    assert torch.allclose(fast(larger), plain(larger), atol=1e-12)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_injection_equals_adding_a_pointwise_convolution(memory_format):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 6, 1, bias=False).double()
    base = torch.randn(3, 6, 7, 9, dtype=torch.float64).contiguous(memory_format=memory_format).requires_grad_(True)
    features = torch.randn(3, 4, 7, 9, dtype=torch.float64, requires_grad=True)
    fast, plain = _plus_pointwise_conv(base, conv, features), base + conv(features)
    assert torch.allclose(fast, plain, atol=1e-12)
    upstream = torch.randn_like(plain)
    inputs = [base, features, conv.weight]
    for fast_grad, plain_grad in zip(
        torch.autograd.grad(fast, inputs, upstream), torch.autograd.grad(plain, inputs, upstream)
    ):
        assert torch.allclose(fast_grad, plain_grad, atol=1e-10)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_upsample_conv_equals_upsampling_then_convolving(bias, memory_format):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 6, 3, 1, 1, bias=bias).double()
    inputs = torch.randn(2, 4, 5, 7, dtype=torch.float64).contiguous(memory_format=memory_format)
    inputs.requires_grad_(True)
    fast = nearest_upsample_conv3x3(inputs, conv)
    plain = conv(torch.nn.functional.interpolate(inputs, scale_factor=2, mode="nearest"))
    assert fast.shape == plain.shape == (2, 6, 10, 14)
    assert torch.allclose(fast, plain, atol=1e-12)
    upstream = torch.randn_like(plain)
    parameters = [inputs, *conv.parameters()]
    for fast_grad, plain_grad in zip(
        torch.autograd.grad(fast, parameters, upstream), torch.autograd.grad(plain, parameters, upstream)
    ):
        assert torch.allclose(fast_grad, plain_grad, atol=1e-10)


@pytest.mark.parametrize("image_size", [16, 32])
def test_decoders_equal_their_layers_run_one_by_one(image_size):
    torch.manual_seed(0)
    depth_net = DepthNet(style_dim=16, image_size=image_size, inject_channels=4, code_dim=16, base_channels=8)
    trans_net = TransformationNet(style_dim=16, image_size=image_size, code_dim=8, base_channels=8)
    torch.nn.init.normal_(depth_net.head[-1].weight)
    depth_net, trans_net = depth_net.double().eval(), trans_net.double().eval()
    w0 = torch.randn(2, 16, dtype=torch.float64)
    features = torch.randn(2, 4, image_size, image_size, dtype=torch.float64)
    with torch.no_grad():
        code = depth_net.mlp(w0)[:, :, None, None]
        plain_depth = depth_net.head(depth_net.network(code) + depth_net.inject(features))
        plain_trans_map = trans_net.network(trans_net.mlp(w0)[:, :, None, None])
        assert torch.allclose(depth_net(w0, features), plain_depth, atol=1e-10)
        assert torch.allclose(trans_net(w0), plain_trans_map, atol=1e-10)


def test_decoders_train_with_in_place_activations():
    torch.manual_seed(0)
    depth_net = DepthNet(style_dim=16, image_size=32, inject_channels=4, code_dim=16, base_channels=8)
    trans_net = TransformationNet(style_dim=16, image_size=32, code_dim=8, base_channels=8)
    torch.nn.init.normal_(depth_net.head[-1].weight)
    w0 = torch.randn(2, 16, requires_grad=True)
    loss = depth_net(w0, torch.randn(2, 4, 32, 32)).pow(2).mean() + trans_net(w0).pow(2).mean()
    loss.backward()  # an in-place ReLU on a tensor autograd saved would raise here
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in depth_net.parameters())
    assert w0.grad.abs().sum() > 0


def test_official_depth_net_forward_once():
    torch.manual_seed(0)
    with torch.no_grad():
        depth = DepthNet().eval()(torch.randn(1, 512), torch.randn(1, 16, 256, 256))
    assert depth.shape == (1, 1, 256, 256) and torch.isfinite(depth).all()


def _official_embedding_file(path, mutate=None):
    state = {f"module.{key}": value for key, value in LResNet().state_dict().items()}
    if mutate:
        mutate(state)
    torch.save({"model_state_dict": state, "epoch": 12}, path)
    return path


def test_face_embedding_loads_the_official_format(tmp_path):
    torch.manual_seed(0)
    reference = LResNet().eval()
    path = tmp_path / "lresnet_casia.pth.tar"
    torch.save({"model_state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, path)
    loaded = load_face_embedding(path)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    faces = torch.rand(2, 3, 256, 256) * 2 - 1
    embedding = loaded(faces)
    assert embedding.shape == (2, 512)
    assert torch.allclose(embedding.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(loaded(faces), reference(torch.nn.functional.avg_pool2d(faces, 2)), atol=1e-5)
    assert loaded(torch.rand(1, 3, 64, 64)).shape == (1, 512)
    from safetensors.torch import save_file

    save_file(loaded.state_dict(), str(tmp_path / "embedding.safetensors"))
    assert torch.allclose(load_face_embedding(tmp_path / "embedding.safetensors")(faces), embedding)


def test_face_embedding_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="official LiftedGAN release"):
        load_face_embedding(tmp_path / "nope.pth.tar")
    corrupt = tmp_path / "corrupt.pth.tar"
    corrupt.write_bytes(b"PK\x03\x04broken")
    with pytest.raises(CheckpointError, match="corrupt.pth.tar"):
        load_face_embedding(corrupt)
    wrong = tmp_path / "wrong.pth.tar"
    torch.save({"state_dict": {}}, wrong)
    with pytest.raises(CheckpointError, match="wrong.pth.tar.*model_state_dict"):
        load_face_embedding(wrong)
    missing = _official_embedding_file(tmp_path / "missing.pth.tar", lambda s: s.pop("module.fc5.bias"))
    with pytest.raises(CheckpointError, match="missing key fc5.bias"):
        load_face_embedding(missing)
    resized = _official_embedding_file(
        tmp_path / "resized.pth.tar", lambda s: s.update({"module.fc5.bias": torch.zeros(3)})
    )
    with pytest.raises(CheckpointError, match=r"fc5.bias has shape \(3,\)"):
        load_face_embedding(resized)
    evil = tmp_path / "evil.pth.tar"
    evil.write_bytes(pickle.dumps({"model_state_dict": print}))
    with pytest.raises(CheckpointError, match="evil.pth.tar"):
        load_face_embedding(evil)
