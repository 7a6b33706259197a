"""Any folder of images as a training set for the StyleGAN2 teacher."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
# Decompression-bomb guard: larger images are skipped rather than decoded.
MAX_PIXELS = 64_000_000


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB, compositing transparency on white (greyscale and palette images are converted)."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        canvas = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, image).convert("RGB")
    return image.convert("RGB")


class ImageFolderDataset(Dataset):
    """Images found recursively under ``root``, centre-cropped to a square and resized to
    ``resolution`` (Lanczos), as float tensors (3, R, R) in [-1, 1].

    Files that are not images or cannot be decoded are skipped with one warning listing them; a
    missing folder or one without a readable image raises a ValueError naming it.
    """

    def __init__(self, root: str | os.PathLike, resolution: int):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"training data folder not found: {self.root}")
        if resolution < 4:
            raise ValueError(f"resolution must be >= 4, got {resolution}")
        self.resolution = resolution
        files = sorted(path for path in self.root.rglob("*") if path.is_file() and not path.name.startswith("."))
        self.paths, skipped = [], []
        for path in files:
            if path.suffix.lower() in IMAGE_SUFFIXES and self._readable(path):
                self.paths.append(path)
            else:
                skipped.append(str(path.relative_to(self.root)))
        if skipped:
            warnings.warn(
                f"skipped {len(skipped)} unreadable or non-image files in {self.root}: {', '.join(skipped)}",
                stacklevel=2,
            )
        if not self.paths:
            raise ValueError(f"no readable images in {self.root} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")

    @staticmethod
    def _readable(path: Path) -> bool:
        try:
            with Image.open(path) as image:
                if image.width * image.height > MAX_PIXELS:
                    return False
                image.verify()
            return True
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            return False

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> torch.Tensor:
        with Image.open(self.paths[index]) as image:
            image = _to_rgb(image)
            side = min(image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            image = image.crop((left, top, left + side, top + side))
            image = image.resize((self.resolution, self.resolution), Image.Resampling.LANCZOS)
            array = np.asarray(image, dtype=np.float32)
        return torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.load(index)
