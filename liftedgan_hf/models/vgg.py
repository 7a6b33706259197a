"""VGG-16 feature extractor for the perceptual loss, in torchvision's key layout (``features.N``).

torchvision is not needed: the layers are written here. Weights come from a local file only (e.g.
torchvision's ``vgg16-397923af.pth``); nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..checkpoints import CheckpointError, load_state_dict_strictly, load_torch_checkpoint

# torchvision's VGG-16 "D" configuration up to relu4_3 (layer 22): channels, "M" for max pooling.
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)
# Indices in ``features`` after which relu1_2, relu2_2, relu3_3 and relu4_3 are taken.
FEATURE_ENDS = (3, 8, 15, 22)


class VGG16Features(nn.Module):
    """The first 23 layers of VGG-16 ``features``; returns relu1_2, relu2_2, relu3_3 and relu4_3.

    Input: (B, 3, H, W) ImageNet-normalised RGB.
    """

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for item in VGG16_LAYERS:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(in_channels, item, 3, padding=1), nn.ReLU()]
                in_channels = item
        self.features = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for index, layer in enumerate(self.features):
            images = layer(images)
            if index in FEATURE_ENDS:
                outputs.append(images)
        return outputs


def load_vgg16(path: str | os.PathLike) -> VGG16Features:
    """Load torchvision VGG-16 weights (``.pth`` state dict or ``.safetensors``) into a frozen
    :class:`VGG16Features`; classifier and deeper ``features`` keys of the file are ignored."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"VGG-16 weights not found: {path}. The perceptual loss needs torchvision's ImageNet VGG-16 "
            "state dict (vgg16-397923af.pth) saved locally; nothing is downloaded. Use --perceptual none "
            "to train without it."
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state_dict = load_file(str(path))
        except Exception as error:
            raise CheckpointError(f"{path}: corrupt safetensors file ({error})") from error
    else:
        state_dict = load_torch_checkpoint(path)
    model = VGG16Features()
    wanted = set(model.state_dict())
    load_state_dict_strictly(model, {key: value for key, value in state_dict.items() if key in wanted}, str(path))
    return model.eval().requires_grad_(False)
