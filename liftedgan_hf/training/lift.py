"""One training step of LiftedGAN: distil a frozen StyleGAN2 teacher into the lifting networks.

Usable without the command line: build a :class:`LiftingTrainer` around a :class:`LiftedGAN` and
call :meth:`LiftingTrainer.step` with a seeded ``torch.Generator``. Weights and the recipe follow
the official configuration (``config/ffhq_256.py``) and the paper.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .. import losses
from ..models.filters import gaussian_blur
from ..pipeline import CanonicalFace, LiftedGAN


@dataclass
class LiftingConfig:
    """Loss weights and sampling of the lifting stage (official defaults; the paper uses 2.0 for
    ``light_view_cycle`` and a pitch range of 10)."""

    reconstruction: float = 5.0
    perceptual: float = 1.0
    flip: float = 0.8
    perturb_image: float = 2.0
    light_view_cycle: float = 4.0
    identity: float = 1.0
    latent_prior: float = 0.5
    albedo_rank: float = 1e-2
    # Gaussian sigma (pixels) of the depth whose shading de-lights the albedo of the rank loss; 0 is
    # the official depth itself. A fine zig-zag in the depth dims its shading, which brightens dark
    # albedo and lowers the rank loss without changing the render; blurring hides that zig-zag.
    albedo_rank_depth_blur: float = 0.0
    pitch_range: float = 15.0
    yaw_range: float = 45.0
    # x-translation code of a perturbed view per sin(yaw): the official 0.2 follows how FFHQ's aligned
    # crops shift a turning head. The synthetic faces turn about a fixed centre, yet 0 lifts them worse
    # (a hollow face from scratch, larger errors as a refinement; see the README), so 0.2 stays.
    perturb_translation: float = 0.2
    identity_yaw_range: float = 25.0
    truncation_psi: float = 0.7
    clip_contour_gradient: bool = True

    def __post_init__(self):
        if not (math.isfinite(self.albedo_rank_depth_blur) and self.albedo_rank_depth_blur >= 0):
            raise ValueError(f"albedo_rank_depth_blur must be a sigma >= 0 pixels, got {self.albedo_rank_depth_blur}")

    def to_dict(self) -> dict:
        return asdict(self)


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; names the term and the step."""


def lifting_parameters(model: LiftedGAN) -> list[nn.Parameter]:
    """The trained parameters: D_V and D_L, M, D_S and D_T (the teacher stays frozen)."""
    networks = (model.style_decompose, model.style_compose, model.depth_net, model.trans_net)
    return [parameter for network in networks for parameter in network.parameters()]


class LiftingTrainer:
    """Computes the LiftedGAN losses for a batch of teacher samples and back-propagates them.

    Args:
        model: the LiftedGAN being trained; its teacher and ``w_mean``/``w_std`` must be set.
        config: loss weights and sampling ranges.
        perceptual: the VGG perceptual loss, or None to train with L1 only.
        face_embedding: the identity network (official LResNet), or None to skip the identity loss.
    """

    def __init__(
        self,
        model: LiftedGAN,
        config: LiftingConfig | None = None,
        perceptual: losses.PerceptualLoss | None = None,
        face_embedding: nn.Module | None = None,
    ):
        self.model = model
        self.config = config or LiftingConfig()
        self.perceptual = perceptual
        self.face_embedding = face_embedding
        model.generator.requires_grad_(False).eval()

    # ------------------------------------------------------------------ pieces
    @torch.no_grad()
    def sample_styles(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Truncated teacher style codes (B, style_dim) and their teacher images (B, 3, S, S)."""
        model = self.model
        z = torch.randn(batch_size, model.style_dim, generator=generator).to(model.device, model.dtype)
        styles = model.w_mean + self.config.truncation_psi * (model.generator.mapping(z) - model.w_mean)
        images = model.generator.synthesis(styles, noise_mode="const").clamp(-1, 1)
        return styles, images

    def _render(self, face, light_code: torch.Tensor, view_code: torch.Tensor, flip: bool = False) -> dict:
        model = self.model
        rotation, translation = model.view_from_code(view_code)
        depth, albedo = (face.depth.flip(2), face.albedo.flip(3)) if flip else (face.depth, face.albedo)
        return model.render_canonical(
            depth,
            albedo,
            face.trans_map,
            rotation,
            translation,
            model.light_from_code(light_code),
            clip_contour_gradient=self.config.clip_contour_gradient,
        )

    def lifting_losses(self, styles: torch.Tensor, teacher_images: torch.Tensor, generator: torch.Generator) -> dict:
        """Every loss that trains the lifting networks (the paper's reconstruction, flip, perturbation
        part b, light/view cycle, identity, latent prior and albedo rank), each only when its weight is
        positive. Returns a dict of scalar tensors, ``total`` being the weighted sum, plus the
        perturbation for part a."""
        model, config = self.model, self.config
        face = model.estimate(styles)
        reconstruction = self._render(face, face.light_code, face.view_code)
        flipped = self._render(face, face.light_code, face.view_code, flip=True)
        mask = (reconstruction["mask"] * flipped["mask"]).detach()
        terms = {
            "reconstruction": losses.symmetric_reconstruction_loss(
                reconstruction["image"],
                flipped["image"],
                teacher_images,
                self.perceptual,
                config.perceptual,
                config.flip,
                mask,
            )
        }
        # Terms weighted 0 are skipped: they would cost time, and a NaN in a term that trains nothing
        # (the ablation's perturbed render, once its views drift edge-on) must not stop training.
        light_code = view_code = None
        if any(getattr(config, name) > 0 for name in ("perturb_image", "light_view_cycle", "latent_prior", "identity")):
            light_code, view_code, angles = losses.sample_perturbation(
                face.light_code.detach(),
                generator,
                config.pitch_range,
                config.yaw_range,
                model.config.rotation_range,
                config.perturb_translation,
            )
            perturbed_styles = model.style_compose(styles, light_code, view_code)
            estimated_light, estimated_view = model.style_decompose.light_and_view(perturbed_styles)
            use_identity = self.face_embedding is not None and config.identity > 0
            if config.perturb_image > 0 or use_identity:
                perturbed = self._render(face, estimated_light, estimated_view)
            if config.perturb_image > 0:
                with torch.no_grad():
                    regenerated = model.generator.synthesis(perturbed_styles, noise_mode="const")
                terms["perturb_image"] = losses.image_loss(
                    perturbed["image"], regenerated, self.perceptual, config.perceptual
                )
            if config.light_view_cycle > 0:
                terms["light_view_cycle"] = losses.light_view_cycle_loss(
                    estimated_light, light_code, estimated_view, view_code
                )
            if config.latent_prior > 0:
                terms["latent_prior"] = losses.latent_prior_loss(perturbed_styles, model.w_mean, model.w_std)
            if use_identity:
                keep = angles[:, 1].abs() < config.identity_yaw_range
                terms["identity"] = losses.identity_loss(self.face_embedding, face.texture, perturbed["image"], keep)
        if config.albedo_rank > 0:
            face_mask = (face.depth[:, None] <= model.config.border_depth - 0.01).to(face.albedo.dtype)
            terms["albedo_rank"] = losses.albedo_rank_loss(self.rank_loss_albedo(face), face_mask)
        weights = {name: getattr(config, name) for name in terms}
        terms["total"] = sum(weights[name] * value for name, value in terms.items())
        return {"terms": terms, "face": face, "light_code": light_code, "view_code": view_code}

    def rank_loss_albedo(self, face: CanonicalFace) -> torch.Tensor:
        """The albedo (B, 3, S, S) the rank loss sees: ``face.albedo``, or with ``albedo_rank_depth_blur``
        the canonical texture de-lit by the shading of the depth blurred by that sigma."""
        sigma = self.config.albedo_rank_depth_blur
        if sigma == 0:
            return face.albedo
        smooth_depth = gaussian_blur(face.depth[:, None], math.ceil(2 * sigma), sigma)[:, 0]
        return self.model.delight(face.texture, smooth_depth, face.light_code)[1]

    def teacher_side_loss(self, styles: torch.Tensor, face, light_code: torch.Tensor, view_code: torch.Tensor):
        """Perturbation part a: the render with the sampled light and view is the target of the
        teacher's image of M(w, light, view), which trains M only."""
        with torch.no_grad():
            target = self._render(face, light_code, view_code)["image"]
        regenerated = self.model.generator.synthesis(
            self.model.style_compose(styles, light_code, view_code), noise_mode="const"
        )
        return losses.image_loss(target, regenerated, self.perceptual, self.config.perceptual)

    # ------------------------------------------------------------------ a whole step
    def step(
        self,
        batch_size: int,
        generator: torch.Generator,
        optimizer: torch.optim.Optimizer,
        step: int = 0,
        accumulation_steps: int = 1,
        backward=None,
        reduce_gradients=None,
    ) -> dict[str, float]:
        """Sample ``accumulation_steps`` batches, compute all losses, back-propagate (two passes per
        batch, as the official code does to save memory) and take one optimiser step. ``backward``
        (default ``Tensor.backward``) and ``reduce_gradients`` (averaging across processes) come from
        Accelerate in the training script. Returns the mean of each loss term.

        Raises :class:`NonFiniteLossError` naming the term, before any update, if a loss is not finite.
        """
        backward = backward or (lambda loss: loss.backward())
        optimizer.zero_grad(set_to_none=True)
        logged: dict[str, float] = {}
        for _ in range(accumulation_steps):
            styles, teacher_images = self.sample_styles(batch_size, generator)
            result = self.lifting_losses(styles, teacher_images, generator)
            terms = result["terms"]
            self._check_finite(terms, step)
            backward(terms["total"] / accumulation_steps)
            if self.config.perturb_image > 0:
                teacher_side = self.teacher_side_loss(styles, result["face"], result["light_code"], result["view_code"])
                self._check_finite({"perturb_teacher": teacher_side}, step)
                backward(self.config.perturb_image * teacher_side / accumulation_steps)
                terms["perturb_teacher"] = teacher_side
            for name, value in terms.items():
                logged[name] = logged.get(name, 0.0) + value.item() / accumulation_steps
        if reduce_gradients is not None:
            reduce_gradients()
        optimizer.step()
        return logged

    @staticmethod
    def _check_finite(terms: dict[str, torch.Tensor], step: int) -> None:
        for name, value in terms.items():
            if not torch.isfinite(value).all():
                raise NonFiniteLossError(f"loss term {name!r} is {value.item()} at step {step}")


def make_optimizer(model: LiftedGAN, learning_rate: float = 1e-4, weight_decay: float = 5e-4) -> torch.optim.Adam:
    """Adam over the lifting networks, as the official recipe (betas 0.9, 0.999)."""
    return torch.optim.Adam(lifting_parameters(model), lr=learning_rate, betas=(0.9, 0.999), weight_decay=weight_decay)
