"""Shared tiny configurations: every model class at a size that runs in milliseconds."""

import pytest
import torch

from liftedgan_hf import LiftedGAN

TINY_GENERATOR = {"resolution": 32, "style_dim": 16, "n_mlp": 2, "channels": [32, 32, 16, 8]}
TINY_LIFTING = {
    "style_decompose": {"hidden": 32},
    "style_compose": {"hidden": 32},
    "depth_net": {"code_dim": 32, "base_channels": 8},
    "trans_net": {"code_dim": 8, "base_channels": 8},
}


def make_tiny_liftedgan(seed: int = 0) -> LiftedGAN:
    torch.manual_seed(seed)
    model = LiftedGAN(generator_config=TINY_GENERATOR, lifting_config=TINY_LIFTING)
    model.compute_latent_statistics(num_samples=512)
    return model.eval()


@pytest.fixture
def tiny_liftedgan() -> LiftedGAN:
    return make_tiny_liftedgan()
