"""The losses of LiftedGAN, each a small function (official code, seasonSH/LiftedGAN, and the paper).

Images are (B, 3, H, W) in [-1, 1]; masks are (B, 1, H, W) in [0, 1]; losses are scalars.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .models.filters import gaussian_blur
from .models.vgg import VGG16Features

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _check_pair(first: torch.Tensor, second: torch.Tensor, mask: torch.Tensor | None) -> None:
    if first.shape != second.shape or first.dim() != 4:
        raise ValueError(
            f"expected two (B, C, H, W) tensors of one shape, got {tuple(first.shape)} and {tuple(second.shape)}"
        )
    if mask is not None and (mask.dim() != 4 or mask.shape[0] != first.shape[0] or mask.shape[1] != 1):
        raise ValueError(f"mask must be (B, 1, H', W'), got {tuple(mask.shape)}")


def photometric_loss(
    reconstruction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean absolute difference; with a mask, the mask-weighted mean over pixels and channels."""
    _check_pair(reconstruction, target, mask)
    difference = (reconstruction - target).abs()
    if mask is None:
        return difference.mean()
    mask = mask.expand_as(difference)
    return (difference * mask).sum() / mask.sum().clamp(min=1e-8)


class PerceptualLoss(nn.Module):
    """Multi-scale VGG-16 perceptual loss of the official code ("cosine" type).

    At each of ``scales`` scales (average-pooled by 2 between them), the features relu2_2, relu3_3 and
    relu4_3 of both images are L2-normalised over channels, their squared difference summed over
    channels, and averaged over pixels (mask-weighted, the mask average-pooled to the feature size).
    The result is the mean over scales and layers.
    """

    def __init__(self, vgg: VGG16Features, scales: int = 3, layers: tuple[int, ...] = (1, 2, 3)):
        super().__init__()
        self.vgg = vgg.eval().requires_grad_(False)
        self.scales, self.layers = scales, layers
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, first: torch.Tensor, second: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        _check_pair(first, second, mask)
        images = (torch.cat([first, second]) / 2 + 0.5 - self.mean) / self.std
        losses = []
        for scale in range(self.scales):
            if scale > 0:
                images = F.avg_pool2d(images, 2)
            features = self.vgg(images)
            for layer in self.layers:
                feature_a, feature_b = features[layer].chunk(2)
                difference = (F.normalize(feature_a, dim=1) - F.normalize(feature_b, dim=1)).pow(2).sum(1, keepdim=True)
                if mask is None:
                    losses.append(difference.mean())
                else:
                    factor = mask.shape[-1] // difference.shape[-1]
                    pooled = F.avg_pool2d(mask, factor) if factor > 1 else mask
                    losses.append((difference * pooled).sum() / pooled.sum().clamp(min=1e-8))
        return sum(losses) / len(losses)


def image_loss(
    reconstruction: torch.Tensor,
    target: torch.Tensor,
    perceptual: PerceptualLoss | None,
    perceptual_weight: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """L1 plus ``perceptual_weight`` times the perceptual loss (skipped when ``perceptual`` is None)."""
    loss = photometric_loss(reconstruction, target, mask)
    if perceptual is not None and perceptual_weight > 0:
        loss = loss + perceptual_weight * perceptual(reconstruction, target, mask)
    return loss


def symmetric_reconstruction_loss(
    reconstruction: torch.Tensor,
    flipped_reconstruction: torch.Tensor,
    target: torch.Tensor,
    perceptual: PerceptualLoss | None,
    perceptual_weight: float = 1.0,
    flip_weight: float = 0.8,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reconstruction of the teacher image from the canonical face and, weighted by ``flip_weight``,
    from its mirrored canonical face (the symmetry prior): image_loss(rec) + flip_weight * image_loss(flip)."""
    loss = image_loss(reconstruction, target, perceptual, perceptual_weight, mask)
    if flip_weight > 0:
        loss = loss + flip_weight * image_loss(flipped_reconstruction, target, perceptual, perceptual_weight, mask)
    return loss


def light_view_cycle_loss(
    predicted_light: torch.Tensor, target_light: torch.Tensor, predicted_view: torch.Tensor, target_view: torch.Tensor
) -> torch.Tensor:
    """L_LVcyc: mean squared error of the re-estimated light codes (B, 4) and rotation codes (the first
    three of the view codes (B, 6)) against the ones used to manipulate the style."""
    if predicted_light.shape != target_light.shape or predicted_view.shape != target_view.shape:
        raise ValueError("predicted and target light/view codes must have the same shapes")
    return (predicted_light - target_light).pow(2).mean() + (predicted_view[:, :3] - target_view[:, :3]).pow(2).mean()


def latent_prior_loss(styles: torch.Tensor, w_mean: torch.Tensor, w_std: torch.Tensor) -> torch.Tensor:
    """Keeps manipulated style codes (B, D) near the teacher's w distribution: the official
    mean((w' - w_mean)^2) * 0.5 / sigma^2 with sigma the mean over dimensions of the std of w."""
    if styles.dim() != 2 or styles.shape[1] != w_mean.shape[0]:
        raise ValueError(f"styles must be (B, {w_mean.shape[0]}), got {tuple(styles.shape)}")
    return (styles - w_mean).pow(2).mean() * 0.5 / w_std.mean().pow(2)


def identity_loss(
    embedding: nn.Module, canonical_texture: torch.Tensor, perturbed_image: torch.Tensor, keep: torch.Tensor
) -> torch.Tensor:
    """Squared distance between face embeddings of the canonical texture and of the perturbed render,
    over the samples in ``keep`` (B,) bool (officially |perturbed yaw| < 25 degrees); 0 if none."""
    _check_pair(canonical_texture, perturbed_image, None)
    if not keep.any():
        return canonical_texture.new_zeros(())
    return (embedding(canonical_texture[keep]) - embedding(perturbed_image[keep])).pow(2).sum(1).mean()


def albedo_rank_loss(albedo: torch.Tensor, face_mask: torch.Tensor, downsample: int = 4) -> torch.Tensor:
    """Nuclear norm of the batch matrix of high-pass grey albedos (one row per image): grey albedo
    minus its official Gaussian blur, masked by ``face_mask`` (B, 1, H, W), average-pooled by
    ``downsample``. Low rank means the albedos share their structure (no shading baked in)."""
    if albedo.dim() != 4 or face_mask.shape != (albedo.shape[0], 1, *albedo.shape[2:]):
        raise ValueError(
            f"need albedo (B, C, H, W) and face_mask (B, 1, H, W), got {tuple(albedo.shape)}, {tuple(face_mask.shape)}"
        )
    grey = albedo.mean(1, keepdim=True)
    residual = (grey - gaussian_blur(grey)) * face_mask
    if downsample > 1:
        residual = F.avg_pool2d(residual, downsample)
    return torch.linalg.matrix_norm(residual.flatten(1), ord="nuc")


def sample_perturbation(
    light_code: torch.Tensor,
    generator: torch.Generator | None = None,
    pitch_range: float = 15.0,
    yaw_range: float = 45.0,
    rotation_range: float = 60.0,
    translation_scale: float = 0.2,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random new light and view codes for the perturbation losses, as the official code draws them.

    Light: the (ambient, diffuse) pairs and the (dx, dy) pairs of the batch, each shuffled. View:
    pitch U(-pitch_range, pitch_range), yaw U(-yaw_range, yaw_range) degrees, roll 0, x-translation
    code sin(yaw) * translation_scale (official: 0.2), the rest 0. Returns (light codes (B, 4), view
    codes (B, 6), angles (B, 3) degrees).
    """
    batch = light_code.shape[0]
    device = light_code.device
    first = torch.randperm(batch, generator=generator).to(device)
    second = torch.randperm(batch, generator=generator).to(device)
    light = torch.cat([light_code[first, :2], light_code[second, 2:]], dim=1)
    unit = torch.rand(batch, 2, generator=generator).to(device, light_code.dtype)
    pitch = (unit[:, 0] * 2 - 1) * pitch_range
    yaw = (unit[:, 1] * 2 - 1) * yaw_range
    angles = torch.stack([pitch, yaw, torch.zeros_like(yaw)], dim=1)
    translation_x = torch.sin(yaw * math.pi / 180) * translation_scale
    view = torch.cat(
        [angles / rotation_range, translation_x[:, None], torch.zeros(batch, 2, device=device, dtype=light.dtype)],
        dim=1,
    )
    return light, view, angles
