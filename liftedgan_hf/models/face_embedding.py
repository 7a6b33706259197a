"""The face-embedding network of the official identity loss: LResNet-18 (``lresnet_casia.pth.tar``).

Key names are the official ones without the ``module.`` prefix of the DataParallel wrapper the file
was saved from. The weights are not redistributable here: get ``lresnet_casia.pth.tar`` from the
official LiftedGAN release (seasonSH/LiftedGAN, "pretrained" models) and pass its path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import CheckpointError, load_state_dict_strictly, load_torch_checkpoint

BLOCKS_PER_STAGE = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3)}


class IRBlock(nn.Module):
    """Pre-activation residual block: BN, 3x3 conv, BN, PReLU, 3x3 conv (strided), BN, plus shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.prelu = nn.PReLU(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, 0, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(self.bn0(inputs))))))
        shortcut = inputs if self.downsample is None else self.downsample(inputs)
        return out + shortcut


class LResNet(nn.Module):
    """LResNet face embedding: RGB faces -> L2-normalised embeddings (B, embedding_dim).

    Args:
        layers: 18 (official), 34 or 50.
        embedding_dim: output size (official 512).
        input_size: the network's input resolution (official 128).
    """

    def __init__(self, layers: int = 18, embedding_dim: int = 512, input_size: int = 128):
        super().__init__()
        if layers not in BLOCKS_PER_STAGE:
            raise ValueError(f"layers must be one of {sorted(BLOCKS_PER_STAGE)}, got {layers}")
        if input_size % 16:
            raise ValueError(f"input_size must be a multiple of 16, got {input_size}")
        self.input_size = input_size
        widths = (64, 128, 256, 512)
        self.conv1 = nn.Conv2d(3, widths[0], 4, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.act_layer = nn.PReLU(widths[0])
        in_channels = widths[0]
        for stage, (width, blocks) in enumerate(zip(widths, BLOCKS_PER_STAGE[layers]), start=1):
            stride = 1 if stage == 1 else 2
            stack = [IRBlock(in_channels, width, stride)] + [IRBlock(width, width) for _ in range(blocks - 1)]
            setattr(self, f"layer{stage}", nn.Sequential(*stack))
            in_channels = width
        self.bn4 = nn.BatchNorm2d(widths[-1])
        self.dropout = nn.Dropout(0.4)
        feature_size = input_size // 16
        self.fc5 = nn.Linear(widths[-1] * feature_size**2, embedding_dim)
        self.bn5 = nn.BatchNorm1d(embedding_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W) in [-1, 1], as the generator outputs them (the official network takes
        them unnormalised). 256x256 is average-pooled by 2 as officially; other sizes are resized
        bilinearly to ``input_size``."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        if images.shape[-2:] == (2 * self.input_size, 2 * self.input_size):
            images = F.avg_pool2d(images, 2)
        elif images.shape[-2:] != (self.input_size, self.input_size):
            images = F.interpolate(
                images, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        features = self.act_layer(self.bn1(self.conv1(images)))
        features = self.layer4(self.layer3(self.layer2(self.layer1(features))))
        features = self.dropout(self.bn4(features))
        embedding = self.bn5(self.fc5(features.flatten(1)))
        return F.normalize(embedding, dim=1)


def load_face_embedding(path: str | os.PathLike) -> LResNet:
    """Load the official ``lresnet_casia.pth.tar`` (or a ``.safetensors`` written by the converter)
    into an :class:`LResNet` in eval mode, frozen.

    Raises FileNotFoundError (saying where to get the file) or CheckpointError naming the file and key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"face embedding weights not found: {path}. The identity loss needs lresnet_casia.pth.tar from "
            "the official LiftedGAN release (seasonSH/LiftedGAN); training runs without it when not given."
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state_dict: Mapping[str, torch.Tensor] = load_file(str(path))
        except Exception as error:
            raise CheckpointError(f"{path}: corrupt safetensors file ({error})") from error
    else:
        checkpoint = load_torch_checkpoint(path)
        if "model_state_dict" not in checkpoint:
            raise CheckpointError(f"{path}: no 'model_state_dict' entry (keys: {sorted(checkpoint)[:8]})")
        state_dict = checkpoint["model_state_dict"]
        if not isinstance(state_dict, Mapping):
            raise CheckpointError(f"{path}: 'model_state_dict' is a {type(state_dict).__name__}, not a state dict")
        state_dict = {key.removeprefix("module."): value for key, value in state_dict.items()}
    model = LResNet()
    load_state_dict_strictly(model, state_dict, str(path))
    return model.eval().requires_grad_(False)
