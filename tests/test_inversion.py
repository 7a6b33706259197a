"""Inversion: an image generated from a known w is recovered."""

import pytest
import torch

from liftedgan_hf.inversion import invert


def psnr(a, b):
    return (10 * torch.log10(4 / (a - b).pow(2).mean())).item()


def test_recovers_a_generated_image(tiny_liftedgan):
    generator = tiny_liftedgan.generator
    target_w = tiny_liftedgan.style_codes(seed=[3, 4], truncation_psi=0.7)
    with torch.no_grad():
        target = generator.synthesis(target_w, noise_mode="const")
    losses = []
    w = invert(tiny_liftedgan, target, steps=300, learning_rate=0.05, callback=lambda step, loss: losses.append(loss))
    with torch.no_grad():
        recovered = generator.synthesis(w, noise_mode="const")
    assert psnr(recovered, target) >= 30
    assert len(losses) == 300 and losses[-1] < losses[0]
    assert not any(parameter.requires_grad for parameter in generator.parameters())


def test_bad_input(tiny_liftedgan):
    with pytest.raises(ValueError, match="image must be"):
        invert(tiny_liftedgan, torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="NaN"):
        invert(tiny_liftedgan, torch.full((1, 3, 32, 32), float("nan")))
    with pytest.raises(TypeError, match="LiftedGAN or a StyleGAN2Generator"):
        invert(torch.nn.Linear(2, 2), torch.zeros(1, 3, 32, 32))
