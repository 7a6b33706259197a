"""Safe reading of PyTorch checkpoint files (no arbitrary unpickling)."""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, unsafe, or does not hold the expected tensors."""


def load_torch_checkpoint(path: str | os.PathLike) -> Mapping[str, object]:
    """Read a ``torch.save`` file with ``weights_only=True`` and return its top-level dict.

    Raises :class:`FileNotFoundError` for a missing file and :class:`CheckpointError` naming the file
    when it is corrupt, holds pickled objects other than tensors and containers, or is not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if unsafe:
            raise CheckpointError(
                f"{path}: refused to load: it holds a pickled {unsafe.group(1)}, not only tensors, and "
                "reading it would run arbitrary code"
            ) from error
        raise CheckpointError(f"{path}: corrupt or not a PyTorch checkpoint (unreadable pickle data)") from error
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: corrupt or not a PyTorch checkpoint ({error})") from error
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(checkpoint).__name__}")
    return checkpoint
