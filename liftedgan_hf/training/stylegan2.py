"""One training step of the StyleGAN2 teacher (rosinality's recipe): non-saturating logistic loss,
lazy R1, optional path-length regularisation, style mixing and an EMA generator."""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from .lift import NonFiniteLossError


@dataclass
class StyleGAN2Config:
    """Hyper-parameters of teacher training (rosinality's defaults)."""

    r1: float = 10.0
    r1_interval: int = 16
    path_length: float = 0.0
    path_length_interval: int = 4
    path_length_decay: float = 0.01
    mixing_probability: float = 0.9
    ema_half_life_images: float = 10_000.0
    # StyleGAN2-ADA's ramp-up: the half-life is at most this fraction of the images seen so far, so a
    # short run's EMA is not dominated by the random initial weights (0: constant half-life).
    ema_rampup: float = 0.05

    def to_dict(self) -> dict:
        return asdict(self)


def make_optimizers(
    generator: StyleGAN2Generator, discriminator: StyleGAN2Discriminator, learning_rate: float, config: StyleGAN2Config
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam with betas (0, 0.99), corrected for lazy regularisation as in StyleGAN2."""

    def adam(parameters, interval):
        ratio = interval / (interval + 1) if interval > 0 else 1.0
        return torch.optim.Adam(parameters, lr=learning_rate * ratio, betas=(0.0, 0.99**ratio))

    return adam(generator.parameters(), config.path_length_interval if config.path_length > 0 else 0), adam(
        discriminator.parameters(), config.r1_interval
    )


class StyleGAN2Trainer:
    """Alternating discriminator and generator updates with an EMA copy of the generator."""

    def __init__(
        self,
        generator: StyleGAN2Generator,
        discriminator: StyleGAN2Discriminator,
        config: StyleGAN2Config | None = None,
    ):
        self.generator, self.discriminator = generator, discriminator
        self.config = config or StyleGAN2Config()
        self.ema = copy.deepcopy(generator).eval().requires_grad_(False)
        self.path_length_mean = torch.zeros(())

    def _fake(self, batch: int, rng: torch.Generator, return_ws: bool = False):
        generator = self.generator
        device = next(generator.parameters()).device
        z = torch.randn(2, batch, generator.config.style_dim, generator=rng).to(device)
        w = generator.mapping(z.flatten(0, 1)).view(2, batch, -1)
        ws = generator.mix_styles(w[0], w[0], generator.num_ws)
        if torch.rand((), generator=rng).item() < self.config.mixing_probability:
            crossover = int(torch.randint(1, generator.num_ws, (), generator=rng))
            ws = generator.mix_styles(w[0], w[1], crossover)
        if return_ws:
            ws = ws.detach().requires_grad_(True)
        images = generator.synthesis(ws, noise_mode="random")
        return (images, ws) if return_ws else images

    def step(
        self,
        real_batches: list[torch.Tensor],
        rng: torch.Generator,
        optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
        step: int,
        backward=None,
        reduce_gradients=None,
    ) -> dict[str, float]:
        """One discriminator and one generator update, accumulating gradients over ``real_batches``
        (each (B, 3, R, R) in [-1, 1]; one per gradient-accumulation step).

        Latents and mixing come from ``rng``; the synthesis noise from torch's global generator, which
        the training script seeds per step so that resumed runs repeat exactly.
        """
        backward = backward or (lambda loss: loss.backward())
        reduce_gradients = reduce_gradients or (lambda parameters: None)
        generator_optimizer, discriminator_optimizer = optimizers
        config, parts = self.config, len(real_batches)
        logged: dict[str, float] = {}

        def log(name: str, value: torch.Tensor) -> None:
            logged[name] = logged.get(name, 0.0) + value.item() / parts

        # discriminator
        self.generator.requires_grad_(False)
        self.discriminator.requires_grad_(True)
        discriminator_optimizer.zero_grad(set_to_none=True)
        for real_images in real_batches:
            with torch.no_grad():
                fake = self._fake(real_images.shape[0], rng)
            loss = F.softplus(self.discriminator(fake)).mean() + F.softplus(-self.discriminator(real_images)).mean()
            self._check(step, d_loss=loss)
            backward(loss / parts)
            log("d_loss", loss)
            if config.r1 > 0 and step % config.r1_interval == 0:
                real = real_images.detach().requires_grad_(True)
                (gradient,) = torch.autograd.grad(self.discriminator(real).sum(), real, create_graph=True)
                penalty = gradient.pow(2).flatten(1).sum(1).mean()
                self._check(step, r1=penalty)
                backward(config.r1 / 2 * penalty * config.r1_interval / parts)
                log("r1", penalty)
        reduce_gradients(self.discriminator.parameters())
        discriminator_optimizer.step()

        # generator
        self.generator.requires_grad_(True)
        self.discriminator.requires_grad_(False)
        generator_optimizer.zero_grad(set_to_none=True)
        for real_images in real_batches:
            batch = real_images.shape[0]
            loss = F.softplus(-self.discriminator(self._fake(batch, rng))).mean()
            self._check(step, g_loss=loss)
            backward(loss / parts)
            log("g_loss", loss)
            if config.path_length > 0 and step % config.path_length_interval == 0:
                images, ws = self._fake(max(1, batch // 2), rng, return_ws=True)
                noise = torch.randn(images.shape, generator=rng).to(images) / math.sqrt(
                    images.shape[2] * images.shape[3]
                )
                (gradient,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
                lengths = gradient.pow(2).sum(2).mean(1).sqrt()
                mean = self.path_length_mean.to(lengths) + config.path_length_decay * (
                    lengths.mean().detach() - self.path_length_mean.to(lengths)
                )
                penalty = (lengths - mean).pow(2).mean()
                self._check(step, path_length=penalty)
                backward(config.path_length * config.path_length_interval * penalty / parts)
                self.path_length_mean = mean.detach()
                log("path_length", penalty)
        reduce_gradients(self.generator.parameters())
        generator_optimizer.step()
        self.update_ema(sum(batch.shape[0] for batch in real_batches), step)
        return logged

    @torch.no_grad()
    def update_ema(self, batch: int, step: int) -> None:
        """Move the EMA generator towards the trained one after ``step`` (0-based) of ``batch`` images."""
        half_life = self.config.ema_half_life_images
        if self.config.ema_rampup > 0:
            half_life = min(half_life, self.config.ema_rampup * (step + 1) * batch)
        decay = 0.5 ** (batch / half_life)
        for ema_parameter, parameter in zip(self.ema.parameters(), self.generator.parameters()):
            ema_parameter.lerp_(parameter, 1 - decay)
        for ema_buffer, buffer in zip(self.ema.buffers(), self.generator.buffers()):
            ema_buffer.copy_(buffer)

    @staticmethod
    def _check(step: int, **terms: torch.Tensor) -> None:
        for name, value in terms.items():
            if not torch.isfinite(value).all():
                raise NonFiniteLossError(f"loss term {name!r} is {value.item()} at step {step}")
