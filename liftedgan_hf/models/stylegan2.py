"""StyleGAN2 generator and discriminator (Karras et al. 2020) in pure PyTorch.

Parameter and buffer names follow rosinality's stylegan2-pytorch, the layout of the official LiftedGAN
teacher, so its checkpoints load strictly. The API follows NVIDIA's StyleGAN2-ADA code:
``mapping(z) -> w``, ``synthesis(w) -> image``.

FIR filtering is written as depthwise convolutions and modulation as input/output scaling around a
shared convolution (mathematically identical to rosinality's grouped convolutions, much faster on CPU).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from ..checkpoints import CheckpointError, load_state_dict_strictly, load_torch_checkpoint
from ..model_card import ModelCardMixin

# Channels per resolution of the official LiftedGAN teacher (slimmer than StyleGAN2's usual table).
LIFTEDGAN_SLIM_CHANNELS = {4: 512, 8: 512, 16: 256, 32: 128, 64: 64, 128: 32, 256: 16}

NoiseMode = Literal["const", "random", "none"]


def rosinality_channels(resolution: int, channel_multiplier: int = 2) -> list[int]:
    """rosinality's default channel table, from 4x4 up to ``resolution``."""
    table = {
        4: 512,
        8: 512,
        16: 512,
        32: 512,
        64: 256 * channel_multiplier,
        128: 128 * channel_multiplier,
        256: 64 * channel_multiplier,
        512: 32 * channel_multiplier,
        1024: 16 * channel_multiplier,
    }
    return [table[2**level] for level in range(2, int(math.log2(resolution)) + 1)]


def channel_list(table: Mapping[int, int], resolution: int) -> list[int]:
    """A {resolution: channels} table as the list (4x4 first) the models are configured with."""
    return [table[2**level] for level in range(2, int(math.log2(resolution)) + 1)]


def _check_resolution(resolution: int, channels: Sequence[int]) -> int:
    if resolution < 4 or resolution & (resolution - 1):
        raise ValueError(f"resolution must be a power of two >= 4, got {resolution}")
    levels = int(math.log2(resolution)) - 1
    if len(channels) != levels:
        raise ValueError(f"channels must list {levels} values (4x4 to {resolution}x{resolution}), got {len(channels)}")
    return levels


# ---------------------------------------------------------------------------------------- FIR filtering


def make_fir_kernel(taps: Sequence[float]) -> torch.Tensor:
    """Separable 2D FIR kernel from 1D taps, normalised to sum 1."""
    taps = torch.tensor(taps, dtype=torch.float32)
    kernel = taps[None, :] * taps[:, None] if taps.dim() == 1 else taps
    return kernel / kernel.sum()


def upfirdn2d(
    images: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)
) -> torch.Tensor:
    """Upsample by zero insertion, pad, filter with ``kernel`` (true convolution), downsample.

    Same result as rosinality's ``upfirdn2d`` (padding ``pad`` = (before, after) on both axes,
    negative values crop), computed as a depthwise convolution: each channel is filtered on its own.
    images: (B, C, H, W); kernel: (kh, kw).
    """
    batch, channels, height, width = images.shape
    if up > 1:
        spread = images.new_zeros(batch, channels, height, up, width, up)
        spread[:, :, :, 0, :, 0] = images
        images = spread.view(batch, channels, height * up, width * up)
    before, after = pad
    images = F.pad(images, [max(before, 0), max(after, 0), max(before, 0), max(after, 0)])
    if before < 0 or after < 0:
        h, w = images.shape[-2:]
        images = images[:, :, max(-before, 0) : h - max(-after, 0), max(-before, 0) : w - max(-after, 0)]
    weight = torch.flip(kernel, [0, 1]).to(images.dtype).expand(channels, 1, *kernel.shape)
    return F.conv2d(images, weight, stride=down, groups=channels)


class Blur(nn.Module):
    """FIR low-pass filter with fixed padding (``kernel`` buffer as in rosinality)."""

    def __init__(self, taps: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        self.register_buffer("kernel", make_fir_kernel(taps) * upsample_factor**2)
        self.pad = pad

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(images, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x FIR upsampling (used for the RGB skip connections)."""

    def __init__(self, taps: Sequence[float], factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_fir_kernel(taps) * factor**2)
        excess = self.kernel.shape[0] - factor
        self.pad = ((excess + 1) // 2 + factor - 1, excess // 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(images, self.kernel, up=self.factor, pad=self.pad)


# ---------------------------------------------------------------------------------------- basic layers


def fused_leaky_relu(inputs: torch.Tensor, bias: torch.Tensor, slope: float = 0.2) -> torch.Tensor:
    """Bias, leaky ReLU and a sqrt(2) gain that keeps the activation variance (rosinality's op)."""
    shape = [1, -1] + [1] * (inputs.dim() - 2)
    return F.leaky_relu(inputs + bias.view(shape).to(inputs.dtype), slope) * math.sqrt(2)


class FusedLeakyReLU(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(inputs, self.bias)


class PixelNorm(nn.Module):
    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs * torch.rsqrt(inputs.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate (weights scaled at run time by 1/sqrt(fan_in))."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0, activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        weight = (self.weight * self.scale).to(inputs.dtype)
        bias = self.bias * self.lr_mul
        if self.activate:
            return fused_leaky_relu(F.linear(inputs, weight), bias)
        return F.linear(inputs, weight, bias.to(inputs.dtype))


class EqualConv2d(nn.Module):
    """Convolution with equalised learning rate."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: int = 0,
        stride: int = 1,
        bias: bool = True,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.padding, self.stride = padding, stride
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(inputs.dtype)
        return F.conv2d(inputs, (self.weight * self.scale).to(inputs.dtype), bias, self.stride, self.padding)


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int, dtype: torch.dtype) -> torch.Tensor:
        return self.input.to(dtype).expand(batch, -1, -1, -1)


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, images: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return images + self.weight.to(images.dtype) * noise


# ---------------------------------------------------------------------------------------- generator blocks


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution, optionally demodulated and/or 2x upsampling.

    Computed as conv(x * s, w) * d instead of a per-sample weight: the same function (the style s
    scales input channels, demodulation d output channels), one batched convolution.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.demodulate, self.upsample = demodulate, upsample
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)
        if upsample:
            factor = 2
            excess = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((excess + 1) // 2 + factor - 1, excess // 2 + 1), upsample_factor=factor)

    def forward(self, images: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        style = self.modulation(style)  # (B, in)
        weight = (self.weight[0] * self.scale).to(images.dtype)  # (out, in, k, k)
        images = images * style[:, :, None, None]
        if self.upsample:
            images = F.conv_transpose2d(images, weight.transpose(0, 1), stride=2)
        else:
            images = F.conv2d(images, weight, padding=self.padding)
        if self.demodulate:
            # sum over in, k, k of (w * s)^2, computed in float32 for half-precision safety
            power = torch.einsum("oi,bi->bo", weight.float().pow(2).sum((2, 3)), style.float().pow(2))
            images = images * torch.rsqrt(power + 1e-8).to(images.dtype)[:, :, None, None]
        if self.upsample:
            images = self.blur(images)
        return images


class StyledConv(nn.Module):
    """Modulated convolution, noise injection and biased leaky ReLU."""

    def __init__(self, in_channels, out_channels, kernel_size, style_dim, upsample=False, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channels, out_channels, kernel_size, style_dim, upsample=upsample, blur_kernel=blur_kernel
        )
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channels)

    def forward(self, images: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.activate(self.noise(self.conv(images, style), noise))


class ToRGB(nn.Module):
    """1x1 modulated projection to RGB, added to the upsampled RGB of the previous resolution."""

    def __init__(self, in_channels: int, style_dim: int, upsample: bool = True, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, images: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        rgb = self.conv(images, style) + self.bias.to(images.dtype)
        if skip is not None:
            rgb = rgb + self.upsample(skip)
        return rgb


class NoiseBuffers(nn.Module):
    """The stored per-layer noise maps ``noise_0 ... noise_{n-1}`` (used by ``noise_mode="const"``)."""

    def __init__(self, resolution: int):
        super().__init__()
        self.num_layers = (int(math.log2(resolution)) - 2) * 2 + 1
        for index in range(self.num_layers):
            size = 2 ** ((index + 5) // 2)
            self.register_buffer(f"noise_{index}", torch.randn(1, 1, size, size))

    def __getitem__(self, index: int) -> torch.Tensor:
        return getattr(self, f"noise_{index}")


# ---------------------------------------------------------------------------------------- generator


class StyleGAN2Generator(ModelCardMixin, ModelMixin, ConfigMixin):
    """StyleGAN2 generator: mapping network + synthesis network with skip-connection toRGB.

    Args:
        resolution: output size (power of two >= 4).
        style_dim: size of z and w.
        n_mlp: layers of the mapping network.
        channels: channels per resolution, 4x4 first (default: the official LiftedGAN slim table at 256).
        lr_mlp: learning-rate multiplier of the mapping network.
        blur_kernel: FIR taps of up-sampling.
    """

    config_name = "config.json"
    model_card_template = "stylegan2"

    @register_to_config
    def __init__(
        self,
        resolution: int = 256,
        style_dim: int = 512,
        n_mlp: int = 8,
        channels: list[int] | None = None,
        lr_mlp: float = 0.01,
        blur_kernel: list[float] | tuple[float, ...] = (1, 3, 3, 1),
    ):
        super().__init__()
        channels = list(channels) if channels is not None else channel_list(LIFTEDGAN_SLIM_CHANNELS, resolution)
        levels = _check_resolution(resolution, channels)
        self.channels = channels
        self.num_ws = levels * 2
        self.style = nn.Sequential(
            PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activate=True) for _ in range(n_mlp)]
        )
        self.input = ConstantInput(channels[0])
        self.conv1 = StyledConv(channels[0], channels[0], 3, style_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(channels[0], style_dim, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        for in_channels, out_channels in itertools.pairwise(channels):
            self.convs.append(
                StyledConv(in_channels, out_channels, 3, style_dim, upsample=True, blur_kernel=blur_kernel)
            )
            self.convs.append(StyledConv(out_channels, out_channels, 3, style_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(out_channels, style_dim, blur_kernel=blur_kernel))
        self.noises = NoiseBuffers(resolution)
        # Mean of w (the truncation centre); set by from_rosinality / training, stored with the weights.
        self.register_buffer("w_avg", torch.zeros(style_dim))

    def model_card_fields(self) -> dict[str, object]:
        return {
            "title": "StyleGAN2 generator",
            "resolution": self.config.resolution,
            "style_dim": self.config.style_dim,
            "channels": self.channels,
        }

    # ---------------------------------------------------------------- latent codes
    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, style_dim) -> w (B, style_dim)."""
        if z.dim() != 2 or z.shape[1] != self.config.style_dim:
            raise ValueError(f"z must have shape (B, {self.config.style_dim}), got {tuple(z.shape)}")
        return self.style(z)

    @torch.no_grad()
    def mean_w(self, n: int = 10_000, seed: int = 0, batch_size: int = 4096) -> torch.Tensor:
        """Mean of ``mapping(z)`` over ``n`` standard normal codes drawn with ``seed``: (style_dim,)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        generator = torch.Generator().manual_seed(seed)
        total = torch.zeros(self.config.style_dim, dtype=torch.float64, device=self.device)
        for start in range(0, n, batch_size):
            z = torch.randn(min(batch_size, n - start), self.config.style_dim, generator=generator)
            total += self.mapping(z.to(self.device, self.dtype)).double().sum(0)
        return (total / n).to(self.dtype)

    def mix_styles(self, w_a: torch.Tensor, w_b: torch.Tensor, crossover: int) -> torch.Tensor:
        """Style mixing: layers before ``crossover`` take ``w_a``, the rest ``w_b`` -> (B, num_ws, style_dim)."""
        if not 0 <= crossover <= self.num_ws:
            raise ValueError(f"crossover must be in [0, {self.num_ws}], got {crossover}")
        w_a, w_b = self._broadcast_ws(w_a), self._broadcast_ws(w_b)
        return torch.cat([w_a[:, :crossover], w_b[:, crossover:]], dim=1)

    def _broadcast_ws(self, w: torch.Tensor) -> torch.Tensor:
        style_dim = self.config.style_dim
        if w.dim() == 2 and w.shape[1] == style_dim:
            return w[:, None].expand(-1, self.num_ws, -1)
        if w.dim() == 3 and w.shape[1:] == (self.num_ws, style_dim):
            return w
        raise ValueError(f"w must be (B, {style_dim}) or (B, {self.num_ws}, {style_dim}), got {tuple(w.shape)}")

    # ---------------------------------------------------------------- synthesis
    def _noise(self, index: int, batch: int, size: int, noise_mode: NoiseMode, like: torch.Tensor) -> torch.Tensor:
        """Noise map of layer ``index`` at ``size`` x ``size`` for ``noise_mode``."""
        if noise_mode == "const":
            return self.noises[index].to(like.dtype)
        if noise_mode == "random":
            return torch.randn(batch, 1, size, size, device=like.device, dtype=like.dtype)
        return like.new_zeros(1, 1, size, size)

    def synthesis(
        self, w: torch.Tensor, noise_mode: NoiseMode = "const", return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Style codes -> images (B, 3, H, W) in about [-1, 1].

        Args:
            w: (B, style_dim), or per-layer w+ (B, num_ws, style_dim).
            noise_mode: "const" (the stored noise buffers), "random" (fresh noise) or "none" (zeros).
            return_features: also return the last feature map (B, channels[-1], H, W), which
                LiftedGAN's shape decoder consumes.
        """
        if noise_mode not in ("const", "random", "none"):
            raise ValueError(f"noise_mode must be 'const', 'random' or 'none', got {noise_mode!r}")
        ws = self._broadcast_ws(w)
        batch = ws.shape[0]
        features = self.input(batch, ws.dtype)
        features = self.conv1(features, ws[:, 0], self._noise(0, batch, 4, noise_mode, ws))
        rgb = self.to_rgb1(features, ws[:, 1])
        layer, size = 1, 4
        for index, to_rgb in enumerate(self.to_rgbs):
            size *= 2
            upsampling_conv, conv = self.convs[2 * index], self.convs[2 * index + 1]
            features = upsampling_conv(features, ws[:, layer], self._noise(layer, batch, size, noise_mode, ws))
            features = conv(features, ws[:, layer + 1], self._noise(layer + 1, batch, size, noise_mode, ws))
            rgb = to_rgb(features, ws[:, layer + 2], rgb)
            layer += 2
        return (rgb, features) if return_features else rgb

    def forward(
        self,
        z: torch.Tensor,
        truncation_psi: float = 1.0,
        noise_mode: NoiseMode = "const",
        return_features: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """z (B, style_dim) -> images, with truncation towards ``w_avg`` (1.0 = none)."""
        w = self.mapping(z)
        if truncation_psi != 1.0:
            w = self.w_avg.to(w.dtype) + truncation_psi * (w - self.w_avg.to(w.dtype))
        return self.synthesis(w, noise_mode=noise_mode, return_features=return_features)

    # ---------------------------------------------------------------- rosinality checkpoints
    @classmethod
    def config_from_rosinality(cls, state_dict: Mapping[str, torch.Tensor], source: str) -> dict:
        """Infer resolution, style_dim, n_mlp and channels from rosinality tensor shapes."""
        try:
            style_dim = state_dict["style.1.weight"].shape[1]
            n_mlp = len([key for key in state_dict if key.startswith("style.") and key.endswith(".weight")])
            channels = [state_dict["input.input"].shape[1]]
            index = 0
            while f"convs.{index}.conv.weight" in state_dict:
                channels.append(state_dict[f"convs.{index}.conv.weight"].shape[1])
                index += 2
        except KeyError as error:
            raise CheckpointError(
                f"{source}: not a rosinality StyleGAN2 generator, missing key {error.args[0]!r}"
            ) from None
        except (AttributeError, IndexError) as error:
            raise CheckpointError(f"{source}: malformed generator tensor ({error})") from None
        return {"resolution": 2 ** (len(channels) + 1), "style_dim": style_dim, "n_mlp": n_mlp, "channels": channels}

    @classmethod
    def from_rosinality_state_dict(
        cls,
        state_dict: Mapping[str, torch.Tensor],
        source: str = "state dict",
        w_avg_samples: int = 50_000,
        lr_mlp: float = 0.01,
    ) -> StyleGAN2Generator:
        """Build a generator from a rosinality ``g_ema`` state dict, strictly, and set ``w_avg``."""
        config = cls.config_from_rosinality(state_dict, source)
        model = cls(**config, lr_mlp=lr_mlp)
        load_state_dict_strictly(model, state_dict, source, ignore=("w_avg",))
        model.w_avg.copy_(model.mean_w(w_avg_samples))
        return model.eval()

    @classmethod
    def from_rosinality(
        cls, path: str | os.PathLike, key: str = "g_ema", w_avg_samples: int = 50_000, lr_mlp: float = 0.01
    ) -> StyleGAN2Generator:
        """Load a rosinality checkpoint file (its ``key`` entry, or a bare state dict) safely.

        ``w_avg`` is the mean of ``w_avg_samples`` mapped codes (the official w_mu statistic).
        """
        checkpoint = load_torch_checkpoint(path)
        state_dict = _pick_state_dict(checkpoint, key, str(path), marker="style.1.weight")
        return cls.from_rosinality_state_dict(state_dict, str(path), w_avg_samples, lr_mlp)


# ---------------------------------------------------------------------------------------- discriminator


class ConvLayer(nn.Sequential):
    """Optional FIR-blurred 2x downsampling, equalised convolution and biased leaky ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        downsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        activate: bool = True,
        bias: bool = True,
    ):
        layers: list[nn.Module] = []
        if downsample:
            excess = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((excess + 1) // 2, excess // 2)))
        layers.append(
            EqualConv2d(
                in_channels,
                out_channels,
                kernel_size,
                padding=0 if downsample else kernel_size // 2,
                stride=2 if downsample else 1,
                bias=bias and not activate,
            )
        )
        if activate:
            layers.append(FusedLeakyReLU(out_channels))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Two 3x3 convolutions (the second downsampling) plus a 1x1 downsampling skip."""

    def __init__(self, in_channels: int, out_channels: int, blur_kernel: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvLayer(
            in_channels, out_channels, 1, downsample=True, activate=False, bias=False, blur_kernel=blur_kernel
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(images)) + self.skip(images)) / math.sqrt(2)


class StyleGAN2Discriminator(ModelMixin, ConfigMixin):
    """Residual StyleGAN2 discriminator with minibatch standard deviation.

    Args:
        resolution: input size (power of two >= 4).
        channels: channels per resolution, 4x4 first (the generator's table).
        blur_kernel: FIR taps of down-sampling.
        stddev_group: samples per minibatch-stddev group (reduced to a divisor of the batch).
    """

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        resolution: int = 256,
        channels: list[int] | None = None,
        blur_kernel: list[float] | tuple[float, ...] = (1, 3, 3, 1),
        stddev_group: int = 4,
    ):
        super().__init__()
        channels = list(channels) if channels is not None else channel_list(LIFTEDGAN_SLIM_CHANNELS, resolution)
        _check_resolution(resolution, channels)
        blocks: list[nn.Module] = [ConvLayer(3, channels[-1], 1)]
        for in_channels, out_channels in zip(channels[:0:-1], channels[-2::-1]):
            blocks.append(ResBlock(in_channels, out_channels, blur_kernel))
        self.convs = nn.Sequential(*blocks)
        self.final_conv = ConvLayer(channels[0] + 1, channels[0], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(channels[0] * 4 * 4, channels[0], activate=True), EqualLinear(channels[0], 1)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W) in about [-1, 1] -> realness logits (B, 1)."""
        resolution = self.config.resolution
        if images.dim() != 4 or images.shape[1:] != (3, resolution, resolution):
            raise ValueError(f"images must be (B, 3, {resolution}, {resolution}), got {tuple(images.shape)}")
        features = self.convs(images)
        batch, channels, height, width = features.shape
        group = max(size for size in range(1, min(batch, self.config.stddev_group) + 1) if batch % size == 0)
        grouped = features.view(group, -1, 1, channels, height, width)
        stddev = torch.sqrt(grouped.var(0, unbiased=False) + 1e-8).mean(dim=(2, 3, 4), keepdim=True).squeeze(2)
        stddev = stddev.repeat(group, 1, height, width)
        features = self.final_conv(torch.cat([features, stddev], dim=1))
        return self.final_linear(features.view(batch, -1))

    @classmethod
    def from_rosinality(cls, path: str | os.PathLike, key: str = "d") -> StyleGAN2Discriminator:
        """Load the discriminator of a rosinality checkpoint file (its ``key`` entry or a bare state dict)."""
        checkpoint = load_torch_checkpoint(path)
        state_dict = _pick_state_dict(checkpoint, key, str(path), marker="final_linear.1.weight")
        try:
            top_down = [state_dict["convs.0.0.weight"].shape[0]]
            while f"convs.{len(top_down)}.conv2.1.weight" in state_dict:
                top_down.append(state_dict[f"convs.{len(top_down)}.conv2.1.weight"].shape[0])
            channels = top_down[::-1]
        except KeyError as error:
            raise CheckpointError(
                f"{path}: not a rosinality StyleGAN2 discriminator, missing key {error.args[0]!r}"
            ) from None
        model = cls(resolution=2 ** (len(channels) + 1), channels=channels)
        load_state_dict_strictly(model, state_dict, str(path))
        return model.eval()


def _pick_state_dict(checkpoint: Mapping, key: str, source: str, marker: str) -> Mapping[str, torch.Tensor]:
    if key in checkpoint:
        state_dict = checkpoint[key]
        if not isinstance(state_dict, Mapping):
            raise CheckpointError(f"{source}: entry {key!r} is a {type(state_dict).__name__}, not a state dict")
    elif marker in checkpoint:
        state_dict = checkpoint
    else:
        raise CheckpointError(f"{source}: no {key!r} entry and not a bare state dict (keys: {sorted(checkpoint)[:8]})")
    return state_dict
