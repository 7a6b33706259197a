"""Training: one step per stage (usable without the script), checkpointing, and the command line."""

from .lift import LiftingConfig, LiftingTrainer, NonFiniteLossError
from .stylegan2 import StyleGAN2Config, StyleGAN2Trainer

__all__ = ["LiftingConfig", "LiftingTrainer", "NonFiniteLossError", "StyleGAN2Config", "StyleGAN2Trainer"]
