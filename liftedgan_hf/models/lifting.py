"""The lifting networks of LiftedGAN, with the official structure and parameter names.

- :class:`StyleDecomposeNet` (official ``netSD``): the viewpoint and light decoders D_V, D_L.
- :class:`StyleComposeNet` (official ``netSC``): the style manipulation network M.
- :class:`DepthNet` (official ``netD``): the shape decoder D_S, with the teacher's last feature map
  injected by a 1x1 convolution.
- :class:`TransformationNet` (official ``netT``): the transformation-map decoder D_T.

The defaults are the official 256x256 sizes; every size is an argument so tiny test models and small
demo models use the same classes. The official state dicts load into the default-size classes with
``load_state_dict(strict=True)`` and no renaming.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ScaleShift(nn.Module):
    """Learned per-feature scale and shift (``weight``, ``bias`` of shape (1, features))."""

    def __init__(self, features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, features))
        self.bias = nn.Parameter(torch.zeros(1, features))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs * self.weight + self.bias


class MLP(nn.Module):
    """``layers`` Linear layers (hidden width ``hidden``) with LeakyReLU(0.2), optionally GroupNorm
    (groups = hidden / 4) after each hidden Linear, and an optional final module (tanh, ScaleShift)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        layers: int = 4,
        hidden: int = 512,
        group_norm: bool = False,
        final: nn.Module | None = None,
    ):
        super().__init__()
        if layers < 1:
            raise ValueError(f"an MLP needs at least one layer, got {layers}")
        modules: list[nn.Module] = []
        for index in range(layers - 1):
            modules.append(nn.Linear(in_features if index == 0 else hidden, hidden))
            if group_norm:
                modules.append(nn.GroupNorm(hidden // 4, hidden))
            modules.append(nn.LeakyReLU(0.2))
        modules.append(nn.Linear(hidden if layers > 1 else in_features, out_features))
        if final is not None:
            modules.append(final)
        self.mlp = nn.Sequential(*modules)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.mlp(inputs)


def _check_codes(name: str, value: torch.Tensor, width: int) -> None:
    if value.dim() != 2 or value.shape[1] != width:
        raise ValueError(f"{name} must have shape (B, {width}), got {tuple(value.shape)}")


class StyleDecomposeNet(nn.Module):
    """D_V and D_L: style code w (B, style_dim) -> (neutral_style (B, style_dim), light (B, 4),
    view (B, 6)); light and view are raw codes in [-1, 1] (tanh).

    The official model never uses ``neutral_style`` (the neutral code comes from
    :class:`StyleComposeNet`), but its weights are part of the checkpoint, so it is kept.
    """

    def __init__(self, style_dim: int = 512, light_dim: int = 4, view_dim: int = 6, layers: int = 4, hidden: int = 512):
        super().__init__()
        self.style_dim = style_dim
        self.model_style = MLP(style_dim, style_dim, layers, hidden, group_norm=True)
        self.model_light = MLP(style_dim, light_dim, layers, hidden, final=nn.Tanh())
        self.model_view = MLP(style_dim, view_dim, layers, hidden, final=nn.Tanh())

    def forward(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        light, view = self.light_and_view(w)
        return self.model_style(w), light, view

    def light_and_view(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(light (B, 4), view (B, 6)) of ``forward`` without the unused neutral style."""
        _check_codes("w", w, self.style_dim)
        return self.model_light(w), self.model_view(w)


class StyleComposeNet(nn.Module):
    """The manipulation network M: (w (B, style_dim), light (B, 4), view (B, 6)) -> w' (B, style_dim).

    Each input is embedded by its own MLP ending in a learned scale and shift; the sum goes through a
    final MLP.
    """

    def __init__(self, style_dim: int = 512, light_dim: int = 4, view_dim: int = 6, layers: int = 4, hidden: int = 512):
        super().__init__()
        self.style_dim, self.light_dim, self.view_dim = style_dim, light_dim, view_dim
        self.embed_style = MLP(style_dim, style_dim, layers, hidden, group_norm=True, final=ScaleShift(style_dim))
        self.embed_light = MLP(light_dim, style_dim, layers, hidden, group_norm=True, final=ScaleShift(style_dim))
        self.embed_view = MLP(view_dim, style_dim, layers, hidden, group_norm=True, final=ScaleShift(style_dim))
        self.model = MLP(style_dim, style_dim, layers, hidden, group_norm=True)

    def forward(self, w: torch.Tensor, light: torch.Tensor, view: torch.Tensor) -> torch.Tensor:
        _check_codes("w", w, self.style_dim)
        _check_codes("light", light, self.light_dim)
        _check_codes("view", view, self.view_dim)
        return self.model(self.embed_style(w) + self.embed_light(light) + self.embed_view(view))


class SingleOutputConv2d(nn.Conv2d):
    """A stride-1 convolution to one output channel (same parameters and names as ``nn.Conv2d``).

    It runs as a depthwise convolution followed by a sum over channels: on a CPU, with channels-last
    inputs, that is about 4x faster than the one-output-channel convolution (measured at 256x256 with
    16 input channels), with the same result up to float rounding.
    """

    def __init__(self, in_channels: int, kernel_size: int, bias: bool = True):
        super().__init__(in_channels, 1, kernel_size, 1, kernel_size // 2, bias=bias)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        channels = self.in_channels
        per_channel = nn.functional.conv2d(
            inputs, self.weight.view(channels, 1, *self.kernel_size), None, 1, self.padding, 1, channels
        )
        output = per_channel.sum(1, keepdim=True)
        return output if self.bias is None else output + self.bias.view(1, 1, 1, 1)


class CodeToGrid(nn.ConvTranspose2d):
    """The decoders' first layer: a 4x4 transposed convolution of a 1x1 code (same parameters and names
    as ``nn.ConvTranspose2d(in_channels, out_channels, 4, 1, 0)``), computed as one matrix product.

    On a 1x1 input the transposed convolution is exactly code @ weight; PyTorch's generic path took
    4.8 ms for D_S's 512-channel code at batch 1 on the development CPU, a large share of a 256-pixel
    generation. Other input sizes fall back to the convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, size: int = 4, bias: bool = False):
        super().__init__(in_channels, out_channels, size, 1, 0, bias=bias)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.shape[-2:] != (1, 1):
            return super().forward(inputs)
        grid = (inputs.flatten(1) @ self.weight.flatten(1)).view(-1, self.out_channels, *self.kernel_size)
        return grid if self.bias is None else grid + self.bias.view(1, -1, 1, 1)


# Decoder maps this wide and wider run channels-last: from 16x16 up, the (transposed) convolutions
# are 10-35% faster on a CPU in that layout, the smaller early ones are not (measured at batch 1 and 8).
CHANNELS_LAST_FROM = 16


def _is_nearest_double(layer: nn.Module) -> bool:
    return isinstance(layer, nn.Upsample) and layer.mode == "nearest" and layer.scale_factor in (2, 2.0)


def _is_same_size_3x3(layer: nn.Module) -> bool:
    return (
        type(layer) is nn.Conv2d
        and layer.kernel_size == (3, 3)
        and layer.stride == (1, 1)
        and layer.padding == (1, 1)
        and layer.dilation == (1, 1)
        and layer.groups == 1
        and layer.padding_mode == "zeros"
    )


def _run_decoder(network: nn.Sequential, inputs: torch.Tensor) -> torch.Tensor:
    """Run a decoder's layers on ``inputs``: channels-last from ``CHANNELS_LAST_FROM`` pixels on, and,
    when no gradient is needed, a nearest 2x upsample followed by a 3x3 convolution as one
    :func:`nearest_upsample_conv3x3` (its backward is slower than the plain layers', measured in training)."""
    layers = list(network)
    fuse = not torch.is_grad_enabled()
    index = 0
    while index < len(layers):
        if inputs.shape[-1] >= CHANNELS_LAST_FROM:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        layer = layers[index]
        if fuse and index + 1 < len(layers) and _is_nearest_double(layer) and _is_same_size_3x3(layers[index + 1]):
            inputs = nearest_upsample_conv3x3(inputs, layers[index + 1])
            index += 2
        else:
            inputs = layer(inputs)
            index += 1
    return inputs


def nearest_upsample_conv3x3(inputs: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(upsample(inputs))`` for a nearest 2x upsample and a 3x3, stride-1, zero-padded ``conv``,
    computed at the input's resolution: (B, C, H, W) -> (B, O, 2H, 2W), channels-last.

    An output pixel of row parity p reads input rows (i - 1, i) if p = 0 and (i, i + 1) if p = 1, so
    for each of the four parities the 3x3 kernel collapses onto a 2x2 one: one 2x2 convolution with
    4 O outputs does 16 / 36 of the multiplications (about 1.4x faster at 256x256, measured).
    """
    batch, _, height, width = inputs.shape
    out_channels = conv.out_channels

    def collapse(kernel: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        first, middle, last = kernel.unbind(dim)
        return torch.stack([first, middle + last], dim), torch.stack([first + middle, last], dim)

    parity_kernels = [kernel for rows in collapse(conv.weight, 2) for kernel in collapse(rows, 3)]
    bias = None if conv.bias is None else conv.bias.repeat(4)
    # (B, 4 O, H + 1, W + 1): parity (p, q) of output (2i + p, 2j + q) is at (i + p, j + q)
    by_parity = nn.functional.conv2d(inputs, torch.cat(parity_kernels), bias, padding=1)
    by_parity = by_parity.permute(0, 2, 3, 1).reshape(batch, height + 1, width + 1, 2, 2, out_channels)
    output = by_parity.new_empty(batch, height, 2, width, 2, out_channels)
    for row_parity in (0, 1):
        for column_parity in (0, 1):
            output[:, :, row_parity, :, column_parity] = by_parity[
                :, row_parity : row_parity + height, column_parity : column_parity + width, row_parity, column_parity
            ]
    return output.view(batch, 2 * height, 2 * width, out_channels).permute(0, 3, 1, 2)


def _plus_pointwise_conv(base: torch.Tensor, conv: nn.Conv2d, features: torch.Tensor) -> torch.Tensor:
    """``base + conv(features)`` for a 1x1, bias-free ``conv``, as one batched matrix product that
    reads the (B, C, H, W) features as they are and writes channels-last like ``base``: at 256x256,
    twice as fast as converting the features' layout, convolving and adding."""
    batch, _, height, width = base.shape
    pixels_by_channels = base.permute(0, 2, 3, 1).reshape(batch, height * width, -1)
    weight = conv.weight[:, :, 0, 0].T.expand(batch, -1, -1)
    summed = torch.baddbmm(pixels_by_channels, features.flatten(2).transpose(1, 2), weight)
    return summed.view(batch, height, width, -1).permute(0, 3, 1, 2)


def _code_mlp(style_dim: int, code_dim: int, layers: int) -> nn.Sequential:
    """The MLP in front of the deconvolution stacks: Linear + LeakyReLU(0.2), ``layers`` times."""
    modules: list[nn.Module] = []
    for index in range(layers):
        modules += [nn.Linear(style_dim if index == 0 else code_dim, code_dim), nn.LeakyReLU(0.2)]
    return nn.Sequential(*modules)


def _stack_depth(image_size: int) -> int:
    """Number of 2x deconvolutions from 4x4 to image_size / 2 (the last 2x is a nearest upsample)."""
    if image_size < 16 or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of two >= 16, got {image_size}")
    return int(math.log2(image_size)) - 3


class DepthNet(nn.Module):
    """The shape decoder D_S: (w0 (B, style_dim), teacher features (B, inject_channels, S, S)) ->
    raw depth (B, 1, S, S), unbounded (LiftedGAN squashes it afterwards).

    A deconvolution stack grows a 1x1 code to S/2 (GroupNorm with groups = channels / 4, ReLU), a
    nearest 2x upsample reaches S, the 1x1-convolved teacher features are added (the InjectConv of
    the paper), and a 3-convolution head predicts depth.

    Args:
        style_dim: size of w0.
        image_size: output size S (power of two >= 16).
        inject_channels: channels of the teacher's last feature map.
        code_dim: width of the code MLP.
        mlp_layers: layers of the code MLP.
        base_channels: channels at S (the official nf = 16); channels double at every halving.
    """

    def __init__(
        self,
        style_dim: int = 512,
        image_size: int = 256,
        inject_channels: int = 16,
        code_dim: int = 512,
        mlp_layers: int = 4,
        base_channels: int = 16,
    ):
        super().__init__()
        self.style_dim, self.image_size, self.inject_channels = style_dim, image_size, inject_channels
        steps = _stack_depth(image_size)
        width = base_channels * 2**steps
        self.mlp = _code_mlp(style_dim, code_dim, mlp_layers)
        network: list[nn.Module] = [
            CodeToGrid(code_dim, width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, 1, 1, bias=False),
            nn.ReLU(inplace=True),
        ]
        for _ in range(steps):
            width //= 2
            network += [
                nn.ConvTranspose2d(width * 2, width, 4, 2, 1, bias=False),
                nn.GroupNorm(width // 4, width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, 1, 1, bias=False),
                nn.GroupNorm(width // 4, width),
                nn.ReLU(inplace=True),
            ]
        network.append(nn.Upsample(scale_factor=2, mode="nearest"))
        self.network = nn.Sequential(*network)
        self.inject = nn.Conv2d(inject_channels, width, 1, 1, 0, bias=False)
        self.head = nn.Sequential(
            nn.Conv2d(width, width, 3, 1, 1, bias=False),
            nn.GroupNorm(width // 4, width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 5, 1, 2, bias=False),
            nn.GroupNorm(width // 4, width),
            nn.ReLU(inplace=True),
            SingleOutputConv2d(width, 5, bias=True),
        )
        # Start from a flat face: random raw depth is per-pixel noise of ~10 pixel widths, from which
        # the reconstruction gradient turns the view edge-on (measured: 40-60 degrees within 100 steps).
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, w0: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        _check_codes("w0", w0, self.style_dim)
        expected = (w0.shape[0], self.inject_channels, self.image_size, self.image_size)
        if tuple(features.shape) != expected:
            raise ValueError(f"features must have shape {expected}, got {tuple(features.shape)}")
        grown = _run_decoder(self.network, self.mlp(w0)[:, :, None, None])
        return self.head(_plus_pointwise_conv(grown, self.inject, features))


class TransformationNet(nn.Module):
    """The transformation-map decoder D_T: w0 (B, style_dim) -> raw map (B, 1, S, S), unbounded
    (LiftedGAN applies sigmoid(x + 5), the face mask and a blur afterwards).

    Args:
        style_dim: size of w0.
        image_size: output size S (power of two >= 16).
        code_dim: width of the code MLP (official: 16).
        mlp_layers: layers of the code MLP.
        base_channels: channels at S (the official nf = 16).
    """

    def __init__(
        self,
        style_dim: int = 512,
        image_size: int = 256,
        code_dim: int = 16,
        mlp_layers: int = 4,
        base_channels: int = 16,
    ):
        super().__init__()
        self.style_dim = style_dim
        steps = _stack_depth(image_size)
        width = base_channels * 2**steps
        self.mlp = _code_mlp(style_dim, code_dim, mlp_layers)
        network: list[nn.Module] = [CodeToGrid(code_dim, width), nn.ReLU(inplace=True)]
        for _ in range(steps):
            network += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.GroupNorm(width // 8, width // 2),
                nn.ReLU(inplace=True),
            ]
            width //= 2
        network += [
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(base_channels, base_channels, 3, 1, 1, bias=False),
            nn.GroupNorm(base_channels // 4, base_channels),
            nn.ReLU(inplace=True),
            SingleOutputConv2d(base_channels, 5, bias=False),
        ]
        self.network = nn.Sequential(*network)

    def forward(self, w0: torch.Tensor) -> torch.Tensor:
        _check_codes("w0", w0, self.style_dim)
        return _run_decoder(self.network, self.mlp(w0)[:, :, None, None])
