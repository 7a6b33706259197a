"""liftedgan-hf: LiftedGAN (CVPR 2021) as Hugging Face models."""

__version__ = "0.1.0"
