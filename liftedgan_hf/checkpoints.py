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


def state_dict_problems(
    expected: Mapping[str, torch.Tensor], given: Mapping[str, object], prefix: str = ""
) -> list[str]:
    """Every missing, unexpected or mis-shaped key of ``given`` against ``expected``, named."""
    problems = [f"missing key {prefix}{key}" for key in sorted(expected.keys() - given.keys())]
    problems += [f"unexpected key {prefix}{key}" for key in sorted(given.keys() - expected.keys())]
    for key in sorted(expected.keys() & given.keys()):
        value = given[key]
        if not isinstance(value, torch.Tensor):
            problems.append(f"{prefix}{key} holds a {type(value).__name__}, not a tensor")
        elif value.shape != expected[key].shape:
            problems.append(f"{prefix}{key} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}")
    return problems


def load_state_dict_strictly(
    module: torch.nn.Module, state_dict: Mapping[str, object], source: str, ignore: tuple[str, ...] = ()
) -> None:
    """``module.load_state_dict`` that first checks every key and raises one :class:`CheckpointError`
    naming ``source`` and all offending keys. Keys in ``ignore`` are the module's own extras (e.g.
    statistics computed after loading) and need not be in ``state_dict``."""
    expected = {key: value for key, value in module.state_dict().items() if key not in ignore}
    problems = state_dict_problems(expected, state_dict)
    if problems:
        raise CheckpointError(f"{source}: " + "; ".join(problems))
    module.load_state_dict(dict(state_dict), strict=not ignore)
