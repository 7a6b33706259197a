"""liftedgan-hf: LiftedGAN (Shi, Aggarwal, Jain, CVPR 2021) as Hugging Face models.

Lifts a frozen 2D StyleGAN2 into a 3D-aware face generator: canonical depth, albedo, light, view
and a transformation map, rendered by a differentiable pure-PyTorch renderer.
"""

from pathlib import Path

from .models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from .pipeline import LiftedGAN, LiftedGANOutput
from .rendering import Renderer, RenderOutput

__version__ = "0.1.0"

# The bundled demo model (a hub-format folder shipped inside the package).
DEMO_MODEL = str(Path(__file__).parent / "demo_model")

__all__ = [
    "DEMO_MODEL",
    "LiftedGAN",
    "LiftedGANOutput",
    "RenderOutput",
    "Renderer",
    "StyleGAN2Discriminator",
    "StyleGAN2Generator",
    "__version__",
]
