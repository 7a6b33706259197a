"""The LiftedGAN hub model: a frozen StyleGAN2 teacher, the lifting networks and the renderer.

Data flows as in Figure 2 of the paper::

    z --mapping--> w --D_V, D_L--> view, light
                   w --M(w, neutral light, frontal view)--> w0 --G2D--> canonical texture
                   w0 --D_S--> canonical depth,  w0 --D_T--> transformation map
    texture / shading(depth, neutral light) = albedo
    renderer(depth, albedo * shading(light), view, trans_map) = image

Angles are in degrees at every public interface.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.utils import BaseOutput
from PIL import Image

from . import export
from .model_card import ModelCardMixin
from .models.filters import gaussian_blur
from .models.lifting import DepthNet, StyleComposeNet, StyleDecomposeNet, TransformationNet
from .models.stylegan2 import StyleGAN2Generator
from .rendering import Renderer, apply_shading, lambertian_shading, unit_normals

# Names of the lifting networks in the official checkpoint and in this model.
OFFICIAL_NETWORK_NAMES = {
    "netSD": "style_decompose",
    "netSC": "style_compose",
    "netD": "depth_net",
    "netT": "trans_net",
}

MAX_SEED = 2**63 - 1


@dataclass
class CanonicalFace:
    """What the lifting networks estimate from a style code, before any rendering.

    Shapes for a batch of B faces at resolution S: ``depth`` (B, S, S) in [min_depth, max_depth];
    ``albedo`` and ``texture`` (B, 3, S, S) in about [-1, 1]; ``trans_map`` (B, 1, S, S) in [0, 1];
    ``light_code`` (B, 4) and ``view_code`` (B, 6) in [-1, 1] (the networks' raw tanh outputs);
    ``w0`` (B, style_dim) the neutral (frontal, evenly lit) style code; ``normal`` (B, 3, S, S) the
    depth's normals, officially normalised (a little shorter than one), as shading uses them.
    """

    depth: torch.Tensor
    albedo: torch.Tensor
    texture: torch.Tensor
    trans_map: torch.Tensor
    light_code: torch.Tensor
    view_code: torch.Tensor
    w0: torch.Tensor
    normal: torch.Tensor


@dataclass
class LiftedGANOutput(BaseOutput):
    """Output of :meth:`LiftedGAN.generate` and :meth:`LiftedGAN.render` (batch first).

    Attributes:
        image: (B, 3, S, S) rendered face in [-1, 1].
        canonical_texture: (B, 3, S, S) the teacher's image of the neutral code w0, in [-1, 1].
        albedo: (B, 3, S, S) de-lit canonical texture, about [-1, 1].
        depth: (B, S, S) canonical (frontal) depth in [min_depth, max_depth].
        normal: (B, 3, S, S) unit normals of the canonical depth (camera frame: x right, y down).
        shading: (B, 1, S, S) Lambertian shading of the canonical face under ``light``.
        trans_map: (B, 1, S, S) transformation map in [0, 1] (1: moves with the head).
        rotation: (B, 3) degrees, (pitch, yaw, roll).
        translation: (B, 3) camera-frame translation.
        light: (B, 4) [ambient, diffuse, dx, dy]; ambient and diffuse in [0, 1], direction (dx, dy, 1).
        w: (B, style_dim) style code of the face.
        w0: (B, style_dim) neutral style code.
        mask: (B, 1, S, S) 1 where the rendered mesh covers the pixel.
        rendered_depth: (B, S, S) depth seen from the rendered view.
    """

    image: torch.Tensor
    canonical_texture: torch.Tensor
    albedo: torch.Tensor
    depth: torch.Tensor
    normal: torch.Tensor
    shading: torch.Tensor
    trans_map: torch.Tensor
    rotation: torch.Tensor
    translation: torch.Tensor
    light: torch.Tensor
    w: torch.Tensor
    w0: torch.Tensor
    mask: torch.Tensor
    rendered_depth: torch.Tensor

    def to_pil(self, field: str = "image") -> list[Image.Image]:
        """PIL images of one field: an image-like field, ``depth``, ``normal`` or ``rendered_depth``."""
        value = getattr(self, field, None)
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"unknown output field {field!r}")
        if field == "depth":
            return export.tensor_to_pil(export.depth_to_image(value))
        if field == "rendered_depth":
            return export.tensor_to_pil(export.depth_to_image(value, self.mask[:, 0] > 0.5))
        if field == "normal":
            return export.tensor_to_pil(export.normal_to_image(value))
        if field in ("shading", "trans_map"):
            return export.tensor_to_pil(value * 2 - 1)
        if value.dim() != 4:
            raise ValueError(f"field {field!r} is not an image")
        return export.tensor_to_pil(value)

    def depth_image(self) -> list[Image.Image]:
        """Canonical depth as grey images (near is bright)."""
        return self.to_pil("depth")

    def normal_image(self) -> list[Image.Image]:
        """Canonical normals as normal-map colours."""
        return self.to_pil("normal")

    def save_mesh(
        self,
        path: str | os.PathLike,
        index: int = 0,
        colors: str = "albedo",
        face_only: bool = False,
        fov: float = 10.0,
    ) -> Path:
        """Write face ``index`` as a vertex-coloured mesh (GLB, OBJ or PLY by suffix).

        ``colors`` is ``"albedo"`` or ``"shaded"`` (albedo times shading). ``face_only`` drops the
        background at border depth. ``fov`` must be the model's field of view (``LiftedGAN.save_mesh``
        passes it).
        """
        if not 0 <= index < self.depth.shape[0]:
            raise ValueError(f"index {index} is out of range for a batch of {self.depth.shape[0]}")
        if colors == "albedo":
            vertex_colors = self.albedo[index] / 2 + 0.5
        elif colors == "shaded":
            vertex_colors = (self.albedo[index] / 2 + 0.5) * self.shading[index]
        else:
            raise ValueError(f"colors must be 'albedo' or 'shaded', got {colors!r}")
        depth = self.depth[index : index + 1]
        renderer = Renderer(depth.shape[-1], fov=fov)
        vertices = renderer.depth_to_points(depth)[0].reshape(-1, 3)
        faces = renderer.grid_faces(depth.shape[-2], depth.shape[-1], device=depth.device)
        if face_only:
            keep = (depth[0] < depth.amax() - 1e-4).flatten()
            faces = faces[keep[faces].all(dim=1)]
        return export.save_mesh(path, vertices, faces, vertex_colors.permute(1, 2, 0).reshape(-1, 3))


def _as_batch_angle(value: float | Sequence[float] | torch.Tensor, name: str, limit: float) -> torch.Tensor:
    """Validate a user angle in degrees: a number or B numbers, finite and within +-limit."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Sequence, torch.Tensor)):
        raise TypeError(f"{name} must be a number, a sequence of numbers or a tensor, got {type(value)}")
    tensor = torch.as_tensor(value, dtype=torch.float32).flatten()
    if tensor.numel() == 0:
        raise ValueError(f"{name} is empty")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} must be finite, got {value}")
    if (tensor.abs() > limit).any():
        raise ValueError(f"{name} must be within [-{limit}, {limit}] degrees, got {value}")
    return tensor


def _parse_light(light: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Validate a user light [ambient, diffuse, dx, dy] (or (B, 4)); returns (B, 4) float."""
    tensor = torch.as_tensor(light, dtype=torch.float32)
    if tensor.dim() == 1:
        tensor = tensor[None]
    if tensor.dim() != 2 or tensor.shape[1] != 4:
        raise ValueError(f"light must be [ambient, diffuse, dx, dy] or (B, 4), got shape {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise ValueError("light must be finite")
    if ((tensor[:, :2] < 0) | (tensor[:, :2] > 1)).any():
        raise ValueError(f"ambient and diffuse light must be in [0, 1], got {tensor[:, :2].tolist()}")
    return tensor


class LiftedGAN(ModelCardMixin, ModelMixin, ConfigMixin):
    """LiftedGAN: a frozen StyleGAN2 teacher lifted to a 3D-aware face generator.

    Holds the teacher (``generator``), the lifting networks (``style_decompose`` = D_V and D_L,
    ``style_compose`` = the manipulation network M, ``depth_net`` = D_S, ``trans_net`` = D_T), the
    renderer settings and the latent statistics ``w_mean`` / ``w_std`` (stored with the weights).

    Args:
        generator_config: keyword arguments of :class:`StyleGAN2Generator` (default: official 256 slim).
        lifting_config: shared keyword arguments of the lifting networks (see
            :mod:`liftedgan_hf.models.lifting`); ``style_dim`` and ``image_size`` follow the generator.
        fov: camera field of view in degrees.
        rotation_center_depth: depth of the point the head rotates about.
        min_depth, max_depth: range the canonical depth is squashed into.
        border_depth: depth of the two outermost pixel columns (the background).
        clamp_border: set the border columns to ``border_depth`` as the official model does.
        rotation_range: degrees of rotation for a view code of 1.
        xy_translation_range, z_translation_range: translation for a view code of 1.
        trans_map_blur_radius, trans_map_blur_sigma: the official Gaussian blur of the trans map.
        truncation_psi: default truncation of :meth:`generate`.
    """

    config_name = "config.json"
    model_card_template = "liftedgan"

    @register_to_config
    def __init__(
        self,
        generator_config: dict[str, Any] | None = None,
        lifting_config: dict[str, Any] | None = None,
        fov: float = 10.0,
        rotation_center_depth: float = 1.0,
        min_depth: float = 0.9,
        max_depth: float = 1.1,
        border_depth: float = 1.05,
        clamp_border: bool = True,
        rotation_range: float = 60.0,
        xy_translation_range: float = 0.1,
        z_translation_range: float = 0.01,
        trans_map_blur_radius: int = 10,
        trans_map_blur_sigma: float = 4.0,
        truncation_psi: float = 0.7,
    ):
        super().__init__()
        if not min_depth < border_depth <= max_depth:
            raise ValueError(
                f"need min_depth < border_depth <= max_depth, got {min_depth}, {border_depth}, {max_depth}"
            )
        self.generator = StyleGAN2Generator(**(generator_config or {}))
        self.generator.requires_grad_(False)
        style_dim = self.generator.config.style_dim
        image_size = self.generator.config.resolution
        lifting = dict(lifting_config or {})
        self.style_decompose = StyleDecomposeNet(style_dim=style_dim, **lifting.get("style_decompose", {}))
        self.style_compose = StyleComposeNet(style_dim=style_dim, **lifting.get("style_compose", {}))
        self.depth_net = DepthNet(
            style_dim=style_dim,
            image_size=image_size,
            inject_channels=self.generator.channels[-1],
            **lifting.get("depth_net", {}),
        )
        self.trans_net = TransformationNet(style_dim=style_dim, image_size=image_size, **lifting.get("trans_net", {}))
        self.renderer = Renderer(
            image_size,
            fov=fov,
            rotation_center_depth=rotation_center_depth,
            min_depth=min_depth,
            max_depth=max_depth,
        )
        self.register_buffer("w_mean", torch.zeros(style_dim))
        self.register_buffer("w_std", torch.ones(style_dim))

    # ------------------------------------------------------------------ latent codes
    @property
    def device(self) -> torch.device:
        """The model's device, read from its latent statistics: diffusers' generic property walks every
        submodule (0.5-0.8 ms a call, measured), and generation asks for it on every call."""
        return self.w_mean.device

    @property
    def dtype(self) -> torch.dtype:
        """The model's floating-point dtype, read like :attr:`device`."""
        return self.w_mean.dtype

    @property
    def image_size(self) -> int:
        return self.generator.config.resolution

    @property
    def style_dim(self) -> int:
        return self.generator.config.style_dim

    @torch.no_grad()
    def compute_latent_statistics(self, num_samples: int = 50_000, seed: int = 0) -> None:
        """Set ``w_mean`` and ``w_std`` from ``num_samples`` mapped Gaussian codes (done once, at
        conversion or before training; loading a model never recomputes them)."""
        generator = torch.Generator().manual_seed(seed)
        z = torch.randn(num_samples, self.style_dim, generator=generator)
        ws = torch.cat([self.generator.mapping(chunk.to(self.device)) for chunk in z.split(4096)])
        self.w_mean.copy_(ws.mean(0))
        self.w_std.copy_(ws.std(0))

    def seeds_to_z(self, seeds: int | Sequence[int]) -> torch.Tensor:
        """One standard normal code (style_dim,) per seed, identical on every device: (B, style_dim)."""
        seed_list = [seeds] if isinstance(seeds, int) and not isinstance(seeds, bool) else seeds
        if not isinstance(seed_list, Sequence) or len(seed_list) == 0:
            raise TypeError(f"seed must be an int or a non-empty list of ints, got {seeds!r}")
        for seed in seed_list:
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise TypeError(f"seeds must be ints, got {seed!r}")
            if not 0 <= seed <= MAX_SEED:
                raise ValueError(f"seeds must be in [0, 2**63 - 1], got {seed}")
        codes = [torch.randn(self.style_dim, generator=torch.Generator().manual_seed(seed)) for seed in seed_list]
        return torch.stack(codes).to(self.device)

    def _check_code(self, code: torch.Tensor, name: str) -> torch.Tensor:
        if not isinstance(code, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(code)}")
        if code.dim() != 2 or code.shape[1] != self.style_dim:
            raise ValueError(f"{name} must have shape (B, {self.style_dim}), got {tuple(code.shape)}")
        if code.device != self.device:
            raise ValueError(f"{name} is on {code.device} but the model is on {self.device}")
        if not torch.isfinite(code).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        return code.to(self.dtype)

    def style_codes(
        self,
        seed: int | Sequence[int] | None = None,
        z: torch.Tensor | None = None,
        w: torch.Tensor | None = None,
        truncation_psi: float | None = None,
    ) -> torch.Tensor:
        """Style codes w (B, style_dim) from seeds, latent codes z, or w itself (exactly one).

        Truncation towards ``w_mean`` applies to seeds and z, not to a given w.
        """
        if sum(value is not None for value in (seed, z, w)) != 1:
            raise ValueError("give exactly one of seed, z or w")
        psi = self.config.truncation_psi if truncation_psi is None else truncation_psi
        if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not math.isfinite(psi) or psi <= 0:
            raise ValueError(f"truncation_psi must be a positive finite number, got {psi!r}")
        if w is not None:
            return self._check_code(w, "w")
        z = self.seeds_to_z(seed) if seed is not None else self._check_code(z, "z")
        styles = self.generator.mapping(z.to(self.dtype))
        return self.w_mean + psi * (styles - self.w_mean)

    # ------------------------------------------------------------------ codes <-> physical values
    def view_from_code(self, view_code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw view code (B, 6) in [-1, 1] -> rotation (B, 3) degrees, translation (B, 3)."""
        rotation = view_code[:, :3] * self.config.rotation_range
        translation = torch.cat(
            [view_code[:, 3:5] * self.config.xy_translation_range, view_code[:, 5:] * self.config.z_translation_range],
            dim=1,
        )
        return rotation, translation

    def view_to_code(self, rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`view_from_code`."""
        return torch.cat(
            [
                rotation / self.config.rotation_range,
                translation[:, :2] / self.config.xy_translation_range,
                translation[:, 2:] / self.config.z_translation_range,
            ],
            dim=1,
        )

    @staticmethod
    def light_from_code(light_code: torch.Tensor) -> torch.Tensor:
        """Raw light code (B, 4) in [-1, 1] -> [ambient, diffuse, dx, dy] with ambient, diffuse in [0, 1]."""
        return torch.cat([light_code[:, :2] / 2 + 0.5, light_code[:, 2:]], dim=1)

    @staticmethod
    def light_to_code(light: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`light_from_code`."""
        return torch.cat([light[:, :2] * 2 - 1, light[:, 2:]], dim=1)

    def posed_view(self, yaw_degrees: torch.Tensor, pitch_degrees: torch.Tensor, roll_degrees: torch.Tensor):
        """Rotation (B, 3) and translation (B, 3) for a requested pose.

        The translation follows the official posing tool (its x and y shifts are functions of the
        yaw and pitch codes), so user poses look like the poses the model was trained on.
        """
        rotation = torch.stack([pitch_degrees, yaw_degrees, roll_degrees], dim=1)
        code = rotation / self.config.rotation_range
        translation_code = torch.stack(
            [torch.sin(code[:, 1]) * 0.1, -torch.sin(code[:, 0]) * 0.2, torch.zeros_like(code[:, 0])], dim=1
        )
        translation = torch.cat(
            [
                translation_code[:, :2] * self.config.xy_translation_range,
                translation_code[:, 2:] * self.config.z_translation_range,
            ],
            dim=1,
        )
        return rotation, translation

    # ------------------------------------------------------------------ estimation and rendering
    def normalize_depth(self, raw_depth: torch.Tensor) -> torch.Tensor:
        """Raw D_S output (B, 1, S, S) -> canonical depth (B, S, S) in [min_depth, max_depth].

        Each map is centred on its mean, squashed by tanh, and its two outermost columns on each side
        are set to ``border_depth`` (the official border clamp).
        """
        depth = raw_depth[:, 0]
        depth = torch.tanh(depth - depth.mean(dim=(1, 2), keepdim=True))
        depth = (1 + depth) / 2 * self.config.max_depth + (1 - depth) / 2 * self.config.min_depth
        if self.config.clamp_border:
            depth = depth.clone()
            depth[:, :, :2] = self.config.border_depth
            depth[:, :, -2:] = self.config.border_depth
        return depth

    def make_trans_map(self, raw_trans_map: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """Raw D_T output (B, 1, S, S) and canonical depth (B, S, S) -> transformation map in [0, 1].

        The face (depth in front of the border) always moves with the head; the rest follows D_T. The
        map is blurred so the neck and hair bend smoothly, and the outer frame never moves.
        """
        trans_map = torch.sigmoid(raw_trans_map + 5)
        face = (depth[:, None] <= self.config.border_depth - 0.01).to(trans_map.dtype)
        trans_map = face + (1 - face) * trans_map
        trans_map = gaussian_blur(trans_map, self.config.trans_map_blur_radius, self.config.trans_map_blur_sigma)
        frame = torch.zeros_like(trans_map)
        frame[:, :, 1:-1, 2:-2] = 1
        return trans_map * frame

    def shade(
        self, depth: torch.Tensor, light: torch.Tensor, normal: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normals (B, 3, S, S) of the canonical depth (officially normalised, slightly shorter than
        one) and Lambertian shading (B, 1, S, S) under ``light`` (B, 4) [ambient, diffuse, dx, dy].
        ``normal``: those normals when already known (they are returned as given)."""
        if normal is None:
            normal = self.renderer.normals(depth, unit=False)  # the official normalisation, as trained
        direction = torch.cat([light[:, 2:], torch.ones_like(light[:, :1])], dim=1)
        shading = lambertian_shading(normal, light[:, 0], light[:, 1], direction)
        return normal, shading

    def delight(
        self, texture: torch.Tensor, depth: torch.Tensor, light_code: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Divide the canonical ``texture`` (B, 3, S, S) in [-1, 1] by the shading of ``depth`` (B, S, S)
        under the ambient and diffuse strengths of ``light_code`` (B, 4) and a frontal direction.
        Returns the depth's normals (B, 3, S, S) and the albedo (B, 3, S, S), [-1, 1] where lit."""
        neutral_light_code = torch.cat([light_code[:, :2], torch.zeros_like(light_code[:, 2:])], dim=1)
        normal, neutral_shading = self.shade(depth, self.light_from_code(neutral_light_code))
        return normal, (texture / 2 + 0.5) / (neutral_shading + 1e-8) * 2 - 1

    def estimate(self, w: torch.Tensor) -> CanonicalFace:
        """Run the lifting networks on style codes ``w`` (B, style_dim)."""
        light_code, view_code = self.style_decompose.light_and_view(w)
        neutral_light_code = torch.cat([light_code[:, :2], torch.zeros_like(light_code[:, 2:])], dim=1)
        w0 = self.style_compose(w, neutral_light_code, torch.zeros_like(view_code))
        texture, features = self.generator.synthesis(w0, noise_mode="const", return_features=True)
        depth = self.normalize_depth(self.depth_net(w0, features))
        trans_map = self.make_trans_map(self.trans_net(w0), depth)
        normal, albedo = self.delight(texture, depth, light_code)
        return CanonicalFace(depth, albedo, texture, trans_map, light_code, view_code, w0, normal)

    def render_canonical(
        self,
        depth: torch.Tensor,
        albedo: torch.Tensor,
        trans_map: torch.Tensor,
        rotation: torch.Tensor,
        translation: torch.Tensor,
        light: torch.Tensor,
        clip_contour_gradient: bool = False,
        normal: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Shade the canonical face with ``light`` (B, 4) and render it from ``rotation`` (B, 3) degrees
        and ``translation`` (B, 3). Returns image, shaded texture, normal, shading, mask and depth.
        ``normal``: the depth's normals from :meth:`estimate`, to save computing them again."""
        normal, shading = self.shade(depth, light, normal)
        shaded_texture = apply_shading(albedo, shading)
        rendered = self.renderer.render(
            depth,
            shaded_texture,
            rotation,
            translation,
            trans_map=trans_map,
            clip_contour_gradient=clip_contour_gradient,
        )
        return {
            "image": rendered.image,
            "shaded_texture": shaded_texture,
            "normal": unit_normals(normal),
            "shading": shading,
            "mask": rendered.mask,
            "rendered_depth": rendered.depth,
        }

    # ------------------------------------------------------------------ user API
    def _resolve_view(self, predicted_rotation, predicted_translation, yaw, pitch, roll):
        batch = predicted_rotation.shape[0]
        if yaw is None and pitch is None and roll is None:
            return predicted_rotation, predicted_translation

        def angle(value, name, limit, column):
            if value is None:
                return predicted_rotation[:, column]
            tensor = _as_batch_angle(value, name, limit).to(predicted_rotation)
            if tensor.numel() not in (1, batch):
                raise ValueError(f"{name} has {tensor.numel()} values for a batch of {batch}")
            return tensor.expand(batch)

        return self.posed_view(
            angle(yaw, "yaw", 90.0, 1), angle(pitch, "pitch", 90.0, 0), angle(roll, "roll", 180.0, 2)
        )

    def _resolve_light(self, predicted_light: torch.Tensor, light) -> torch.Tensor:
        if light is None:
            return predicted_light
        parsed = _parse_light(light).to(predicted_light)
        if parsed.shape[0] not in (1, predicted_light.shape[0]):
            raise ValueError(f"light has {parsed.shape[0]} rows for a batch of {predicted_light.shape[0]}")
        return parsed.expand_as(predicted_light)

    @torch.no_grad()
    def generate(
        self,
        seed: int | Sequence[int] | None = None,
        z: torch.Tensor | None = None,
        w: torch.Tensor | None = None,
        truncation_psi: float | None = None,
        yaw: float | Sequence[float] | torch.Tensor | None = None,
        pitch: float | Sequence[float] | torch.Tensor | None = None,
        roll: float | Sequence[float] | torch.Tensor | None = None,
        light: Sequence[float] | torch.Tensor | None = None,
    ) -> LiftedGANOutput:
        """Generate 3D faces and render them.

        Args:
            seed / z / w: exactly one: an int or list of ints (>= 0), latent codes (B, style_dim), or
                style codes (B, style_dim) (w is used as given, without truncation).
            truncation_psi: > 0; 1 disables truncation (default: the model's, 0.7 officially).
            yaw, pitch, roll: degrees (|yaw|, |pitch| <= 90, |roll| <= 180), a number or one per face.
                None keeps the view predicted by D_V for that angle; when all three are None the
                predicted translation is kept too.
            light: [ambient, diffuse, dx, dy] or (B, 4), ambient and diffuse in [0, 1], direction
                (dx, dy, 1) normalised; None uses the predicted light.
        """
        # Validate every argument before running any network.
        if yaw is not None:
            _as_batch_angle(yaw, "yaw", 90.0)
        if pitch is not None:
            _as_batch_angle(pitch, "pitch", 90.0)
        if roll is not None:
            _as_batch_angle(roll, "roll", 180.0)
        if light is not None:
            _parse_light(light)
        styles = self.style_codes(seed=seed, z=z, w=w, truncation_psi=truncation_psi)
        face = self.estimate(styles)
        rotation, translation = self.view_from_code(face.view_code)
        rotation, translation = self._resolve_view(rotation, translation, yaw, pitch, roll)
        used_light = self._resolve_light(self.light_from_code(face.light_code), light)
        rendered = self.render_canonical(
            face.depth, face.albedo, face.trans_map, rotation, translation, used_light, normal=face.normal
        )
        return LiftedGANOutput(
            image=rendered["image"],
            canonical_texture=face.texture,
            albedo=face.albedo,
            depth=face.depth,
            normal=rendered["normal"],
            shading=rendered["shading"],
            trans_map=face.trans_map,
            rotation=rotation,
            translation=translation,
            light=used_light,
            w=styles,
            w0=face.w0,
            mask=rendered["mask"],
            rendered_depth=rendered["rendered_depth"],
        )

    @torch.no_grad()
    def render(
        self,
        output: LiftedGANOutput,
        yaw: float | Sequence[float] | torch.Tensor | None = None,
        pitch: float | Sequence[float] | torch.Tensor | None = None,
        roll: float | Sequence[float] | torch.Tensor | None = None,
        light: Sequence[float] | torch.Tensor | None = None,
    ) -> LiftedGANOutput:
        """Re-render the cached canonical face of ``output`` from a new view and/or light.

        No network runs: only shading and rasterisation, which is what makes sliders interactive.
        Arguments as in :meth:`generate`; None keeps the value of ``output``. With ``light`` None the
        shading of ``output`` still holds (it lives on the canonical face) and is reused.
        """
        if not isinstance(output, LiftedGANOutput):
            raise TypeError(f"output must be a LiftedGANOutput, got {type(output)}")
        rotation, translation = self._resolve_view(output.rotation, output.translation, yaw, pitch, roll)
        if light is None:
            used_light, normal, shading = output.light, output.normal, output.shading
        else:
            used_light = self._resolve_light(output.light, light)
            raw_normal, shading = self.shade(output.depth, used_light)
            normal = unit_normals(raw_normal)
        rendered = self.renderer.render(
            output.depth, apply_shading(output.albedo, shading), rotation, translation, trans_map=output.trans_map
        )
        return LiftedGANOutput(
            **{
                **output,
                "image": rendered.image,
                "normal": normal,
                "shading": shading,
                "rotation": rotation,
                "translation": translation,
                "light": used_light,
                "mask": rendered.mask,
                "rendered_depth": rendered.depth,
            }
        )

    def save_mesh(self, output: LiftedGANOutput, path: str | os.PathLike, index: int = 0, **kwargs) -> Path:
        """:meth:`LiftedGANOutput.save_mesh` with this model's field of view."""
        return output.save_mesh(path, index=index, fov=self.config.fov, **kwargs)

    def rotation_frames(
        self, output: LiftedGANOutput, yaws: Sequence[float] = tuple(range(-45, 46, 3)), index: int = 0
    ) -> list[Image.Image]:
        """Frames of face ``index`` turning through ``yaws`` (degrees), pitch 0."""
        single = _select(output, index)
        return [self.render(single, yaw=yaw, pitch=0.0, roll=0.0).to_pil()[0] for yaw in yaws]

    def relight_frames(
        self,
        output: LiftedGANOutput,
        angles: Sequence[float] = tuple(range(-60, 61, 5)),
        ambient: float = 0.6,
        diffuse: float = 0.9,
        index: int = 0,
    ) -> list[Image.Image]:
        """Frames of face ``index`` lit from horizontal directions ``angles`` (degrees, |angle| < 90),
        as the official relighting tool does (dx = tan(angle), dy = 0)."""
        single = _select(output, index)
        frames = []
        for angle in angles:
            if not -90 < angle < 90:
                raise ValueError(f"light angles must be within (-90, 90) degrees, got {angle}")
            light = [ambient, diffuse, math.tan(math.radians(angle)), 0.0]
            frames.append(self.render(single, light=light).to_pil()[0])
        return frames

    def rotation_video(
        self,
        output: LiftedGANOutput,
        path: str | os.PathLike,
        yaws: Sequence[float] = tuple(range(-45, 46, 3)),
        index: int = 0,
        fps: float = 15.0,
    ) -> Path:
        """Write a yaw sweep of face ``index`` as GIF or MP4 (by suffix); returns the path."""
        frames = self.rotation_frames(output, yaws, index)
        return export.save_animation(frames + frames[-2:0:-1], path, fps=fps)

    def relight_video(
        self,
        output: LiftedGANOutput,
        path: str | os.PathLike,
        angles: Sequence[float] = tuple(range(-60, 61, 5)),
        index: int = 0,
        fps: float = 15.0,
    ) -> Path:
        """Write a relighting sweep of face ``index`` as GIF or MP4 (by suffix); returns the path."""
        frames = self.relight_frames(output, angles, index=index)
        return export.save_animation(frames + frames[-2:0:-1], path, fps=fps)

    @torch.no_grad()
    def interpolate(
        self, seed_a: int, seed_b: int, steps: int = 8, truncation_psi: float | None = None, **render_kwargs
    ) -> LiftedGANOutput:
        """Faces along the straight line between the style codes of two seeds (``steps`` >= 2 faces)."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
            raise ValueError(f"steps must be an int >= 2, got {steps!r}")
        ends = self.style_codes(seed=[seed_a, seed_b], truncation_psi=truncation_psi)
        weights = torch.linspace(0, 1, steps, device=self.device, dtype=ends.dtype)[:, None]
        return self.generate(w=(1 - weights) * ends[0] + weights * ends[1], **render_kwargs)

    # ------------------------------------------------------------------ saving
    def model_card_fields(self) -> dict[str, object]:
        return {
            "title": "LiftedGAN 3D-aware face generator",
            "resolution": self.image_size,
            "style_dim": self.style_dim,
        }


def _select(output: LiftedGANOutput, index: int) -> LiftedGANOutput:
    """Face ``index`` of a batched output, as a batch of one."""
    batch = output.image.shape[0]
    if not 0 <= index < batch:
        raise ValueError(f"index {index} is out of range for a batch of {batch}")
    return LiftedGANOutput(**{key: value[index : index + 1] for key, value in output.items()})
