"""Real image -> teacher style code, by optimisation (the core that face alignment, w+ and style
transfer build on)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .losses import PerceptualLoss, image_loss
from .models.stylegan2 import StyleGAN2Generator
from .pipeline import LiftedGAN


def invert(
    model_or_generator: LiftedGAN | StyleGAN2Generator,
    image: torch.Tensor,
    steps: int = 300,
    learning_rate: float = 0.05,
    perceptual: PerceptualLoss | None = None,
    perceptual_weight: float = 1.0,
    initial_w: torch.Tensor | None = None,
    callback: Callable[[int, float], None] | None = None,
) -> torch.Tensor:
    """Find w (B, style_dim) whose teacher image matches ``image`` (B, 3, S, S) in [-1, 1].

    Starts at the mean w (``LiftedGAN.w_mean`` or the generator's ``w_avg``, or ``initial_w``), and
    minimises L1 (plus ``perceptual_weight`` times the perceptual loss when given) with Adam and a
    cosine-decayed learning rate; the teacher uses its fixed noise. ``callback(step, loss)`` is
    called after every step.
    """
    generator = model_or_generator.generator if isinstance(model_or_generator, LiftedGAN) else model_or_generator
    if not isinstance(generator, StyleGAN2Generator):
        raise TypeError(f"expected a LiftedGAN or a StyleGAN2Generator, got {type(model_or_generator)}")
    resolution = generator.config.resolution
    if image.dim() != 4 or image.shape[1:] != (3, resolution, resolution):
        raise ValueError(f"image must be (B, 3, {resolution}, {resolution}) in [-1, 1], got {tuple(image.shape)}")
    if not torch.isfinite(image).all():
        raise ValueError("image contains NaN or infinite values")
    if steps < 1 or not learning_rate > 0:
        raise ValueError(f"need steps >= 1 and a positive learning rate, got {steps}, {learning_rate}")
    if initial_w is None:
        mean = model_or_generator.w_mean if isinstance(model_or_generator, LiftedGAN) else generator.w_avg
        initial_w = mean.expand(image.shape[0], -1)
    w = initial_w.detach().clone().to(image).requires_grad_(True)
    optimizer = torch.optim.Adam([w], lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    was_training = generator.training
    generator.eval()
    requires_grad = [parameter.requires_grad for parameter in generator.parameters()]
    generator.requires_grad_(False)
    try:
        for step in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss = image_loss(generator.synthesis(w, noise_mode="const"), image, perceptual, perceptual_weight)
            loss.backward()
            optimizer.step()
            schedule.step()
            if callback is not None:
                callback(step, loss.item())
    finally:
        for parameter, flag in zip(generator.parameters(), requires_grad):
            parameter.requires_grad_(flag)
        generator.train(was_training)
    return w.detach()
