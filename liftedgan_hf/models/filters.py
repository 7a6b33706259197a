"""Image filters shared by the lifting model and its losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def official_gaussian_profile(radius: int, sigma: float) -> torch.Tensor:
    """The 1D factor (2*radius+1,) of the official LiftedGAN blur kernel, normalised to sum 1.

    The official kernel evaluates ``exp(-((x - mean) / (2 * sigma)) ** 2)``, i.e. a Gaussian whose
    standard deviation is ``sqrt(2) * sigma``; we keep that formula so converted models behave exactly
    like the released one.
    """
    if radius < 0:
        raise ValueError(f"blur radius must be >= 0, got {radius}")
    if not sigma > 0:
        raise ValueError(f"blur sigma must be > 0, got {sigma}")
    offsets = torch.arange(2 * radius + 1, dtype=torch.float64) - radius
    profile = torch.exp(-((offsets / (2 * sigma)) ** 2))
    return (profile / profile.sum()).float()


def official_gaussian_kernel(radius: int, sigma: float) -> torch.Tensor:
    """The (2*radius+1)^2 Gaussian kernel of the official LiftedGAN code, normalised to sum 1: the outer
    product of :func:`official_gaussian_profile` with itself."""
    profile = official_gaussian_profile(radius, sigma).double()
    return (profile[:, None] * profile[None, :]).float()


def gaussian_blur(images: torch.Tensor, radius: int = 10, sigma: float = 4.0) -> torch.Tensor:
    """Blur every channel of ``images`` (B, C, H, W) with the official kernel and reflect padding.

    The kernel is separable, so it runs as a row pass and a column pass (2 (2r+1) instead of
    (2r+1)^2 multiplications per pixel). Reflect padding needs ``radius < min(H, W)``; shapes and
    dtype are preserved.
    """
    if images.dim() != 4:
        raise ValueError(f"gaussian_blur expects (B, C, H, W), got shape {tuple(images.shape)}")
    height, width = images.shape[-2:]
    if radius >= min(height, width):
        raise ValueError(f"blur radius {radius} needs images larger than {height}x{width}")
    # Every image channel as a group of one depthwise convolution: with few channels (the
    # transformation map has one) this is 4x faster on a CPU than convolving the batch.
    batch, channels = images.shape[:2]
    planes = batch * channels
    profile = official_gaussian_profile(radius, sigma).to(images)
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect").reshape(
        1, planes, *[s + 2 * radius for s in (height, width)]
    )
    rows = F.conv2d(padded, profile.view(1, 1, 1, -1).expand(planes, 1, 1, -1), groups=planes)
    blurred = F.conv2d(rows, profile.view(1, 1, -1, 1).expand(planes, 1, -1, 1), groups=planes)
    return blurred.view(images.shape)
