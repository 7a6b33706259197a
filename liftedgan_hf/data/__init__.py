"""Data: image folders for teacher training."""

from .image_folder import ImageFolderDataset

__all__ = ["ImageFolderDataset"]
