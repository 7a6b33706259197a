"""Each LiftedGAN loss against hand-computed values."""

import math

import pytest
import torch

from liftedgan_hf import losses
from liftedgan_hf.models.filters import gaussian_blur, official_gaussian_kernel
from liftedgan_hf.models.vgg import VGG16Features, load_vgg16


def test_photometric_loss_values_and_mask():
    a = torch.zeros(1, 3, 2, 2)
    b = torch.ones(1, 3, 2, 2)
    b[..., 0, 0] = 3.0
    assert losses.photometric_loss(a, b).item() == pytest.approx((3 + 1 + 1 + 1) / 4)
    mask = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]])
    assert losses.photometric_loss(a, b, mask).item() == pytest.approx(1.0)
    changed = b.clone()
    changed[..., 0, 0] = 100.0  # outside the mask
    assert losses.photometric_loss(a, changed, mask).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one shape"):
        losses.photometric_loss(a, torch.zeros(1, 3, 2, 3))


def test_official_blur_kernel():
    kernel = official_gaussian_kernel(10, 4.0)
    assert kernel.shape == (21, 21) and kernel.sum().item() == pytest.approx(1.0)
    # the official formula: exp(-(d / (2 sigma))^2), a Gaussian of standard deviation sqrt(2) * sigma
    assert (kernel[10, 10] / kernel[10, 18]).item() == pytest.approx(math.exp((8 / 8) ** 2), rel=1e-5)
    flat = torch.full((1, 1, 32, 32), 0.3)
    assert torch.allclose(gaussian_blur(flat), flat, atol=1e-6)
    # the separable passes equal the official dense 21 x 21 convolution
    images = torch.rand(2, 3, 40, 40)
    padded = torch.nn.functional.pad(images, (10, 10, 10, 10), mode="reflect")
    dense = torch.nn.functional.conv2d(padded, kernel.expand(3, 1, 21, 21), groups=3)
    assert torch.allclose(gaussian_blur(images), dense, atol=1e-6)


def test_albedo_rank_is_the_nuclear_norm():
    torch.manual_seed(0)
    albedo = torch.rand(3, 3, 24, 24) * 2 - 1
    mask = (torch.rand(3, 1, 24, 24) > 0.3).float()
    grey = albedo.mean(1, keepdim=True)
    residual = torch.nn.functional.avg_pool2d((grey - gaussian_blur(grey)) * mask, 4).flatten(1)
    expected = torch.linalg.svdvals(residual).sum()
    assert losses.albedo_rank_loss(albedo, mask).item() == pytest.approx(expected.item(), rel=1e-5)
    # identical albedos form a rank-one matrix: the loss equals the norm of one row times sqrt(B)
    same = albedo[:1].expand(3, -1, -1, -1)
    ones = torch.ones(3, 1, 24, 24)
    row = torch.nn.functional.avg_pool2d(
        same[:1].mean(1, keepdim=True) - gaussian_blur(same[:1].mean(1, keepdim=True)), 4
    )
    assert losses.albedo_rank_loss(same, ones).item() == pytest.approx(row.norm().item() * math.sqrt(3), rel=1e-4)


def test_cycle_prior_and_identity():
    light, view = torch.zeros(2, 4), torch.zeros(2, 6)
    moved_view = view.clone()
    moved_view[:, 3:] = 5.0  # translation codes are not part of the cycle loss
    assert losses.light_view_cycle_loss(light, light, view, moved_view).item() == 0.0
    assert losses.light_view_cycle_loss(light + 1, light, view, view).item() == pytest.approx(1.0)
    styles = torch.full((2, 4), 3.0)
    mean, std = torch.ones(4), torch.full((4,), 2.0)
    assert losses.latent_prior_loss(styles, mean, std).item() == pytest.approx(4 * 0.5 / 4)

    class Embedding(torch.nn.Module):
        def forward(self, images):
            return images.mean((2, 3))

    a = torch.zeros(3, 3, 8, 8)
    b = torch.ones(3, 3, 8, 8)
    keep = torch.tensor([True, False, True])
    assert losses.identity_loss(Embedding(), a, b, keep).item() == pytest.approx(3.0)
    assert losses.identity_loss(Embedding(), a, b, torch.zeros(3, dtype=torch.bool)).item() == 0.0


def test_perturbation_sampler():
    generator = torch.Generator().manual_seed(1)
    light_code = torch.arange(24.0).view(6, 4)
    light, view, angles = losses.sample_perturbation(light_code, generator, pitch_range=15, yaw_range=45)
    assert sorted(light[:, 0].tolist()) == sorted(light_code[:, 0].tolist())  # shuffled pairs
    assert (light[:, 1] - light[:, 0] == 1).all() and (light[:, 3] - light[:, 2] == 1).all()
    assert angles[:, 0].abs().max() <= 15 and angles[:, 1].abs().max() <= 45 and (angles[:, 2] == 0).all()
    assert torch.allclose(view[:, :3], angles / 60)
    assert torch.allclose(view[:, 3], torch.sin(torch.deg2rad(angles[:, 1])) * 0.2)
    again = losses.sample_perturbation(light_code, torch.Generator().manual_seed(1), 15, 45)
    assert torch.equal(again[1], view)
    still = losses.sample_perturbation(light_code, torch.Generator().manual_seed(1), 15, 45, translation_scale=0.0)
    assert torch.equal(still[2], angles) and (still[1][:, 3:] == 0).all()


def test_perceptual_loss_with_vgg_in_torchvision_layout(tmp_path):
    torch.manual_seed(0)
    vgg = VGG16Features()
    state = vgg.state_dict()
    state["classifier.0.weight"] = torch.zeros(2, 2)  # present in torchvision files, ignored
    torch.save(state, tmp_path / "vgg16.pth")
    loaded = load_vgg16(tmp_path / "vgg16.pth")
    assert not any(p.requires_grad for p in loaded.parameters())
    perceptual = losses.PerceptualLoss(loaded)
    a = torch.rand(2, 3, 32, 32) * 2 - 1
    b = torch.rand(2, 3, 32, 32) * 2 - 1
    assert perceptual(a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert perceptual(a, b).item() > 0
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., :16] = 1
    changed = a.clone()
    changed[..., 24:] = b[..., 24:]  # outside the mask: felt inside only through VGG's receptive fields
    assert perceptual(a, changed, mask).item() < 0.5 * perceptual(a, b, mask).item()
    b.requires_grad_(True)
    perceptual(a, b).backward()
    assert b.grad.abs().sum() > 0
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
        load_vgg16(tmp_path / "missing.pth")
