"""Atomic, resumable training checkpoints in ``OUTPUT_DIR/checkpoint-STEP/``.

A checkpoint is written into a hidden temporary folder and renamed into place only when complete, so
a process killed at any moment never leaves a folder that ``--resume_from_checkpoint latest`` would
pick up half-written. Model weights and training statistics are stored as safetensors files, one per
named module, rather than registered with accelerate, whose custom states are pickles it loads with
``weights_only=False``: resuming from a checkpoint folder never unpickles anything but the optimizer
and RNG states, which accelerate loads with ``weights_only=True``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
COMPLETE_MARKER = "training_state.json"


class Stateful(Protocol):
    def state_dict(self) -> dict[str, torch.Tensor]: ...

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> object: ...


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints in ``output_dir``, oldest first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = []
    for path in output_dir.iterdir():
        match = CHECKPOINT_PATTERN.match(path.name)
        if match and (path / COMPLETE_MARKER).is_file():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def resolve_resume_path(output_dir: str | os.PathLike, resume_from_checkpoint: str | None) -> Path | None:
    """``latest`` -> newest complete checkpoint (None if there is none); a path must be a checkpoint."""
    if resume_from_checkpoint is None:
        return None
    if resume_from_checkpoint == "latest":
        checkpoints = list_checkpoints(output_dir)
        return checkpoints[-1] if checkpoints else None
    path = Path(resume_from_checkpoint)
    if not (path / COMPLETE_MARKER).is_file():
        raise FileNotFoundError(f"{path} is not a complete checkpoint folder (no {COMPLETE_MARKER} in it)")
    return path


def read_training_state(checkpoint: str | os.PathLike) -> dict:
    """The JSON state (at least ``step``) stored with a checkpoint."""
    return json.loads((Path(checkpoint) / COMPLETE_MARKER).read_text())


def save_checkpoint(
    accelerator: Accelerator,
    output_dir: str | os.PathLike,
    step: int,
    training_state: dict | None = None,
    total_limit: int | None = None,
    modules: Mapping[str, Stateful] | None = None,
) -> Path:
    """Save the accelerator state and ``modules`` (as ``NAME.safetensors``) at ``step`` atomically;
    keep at most ``total_limit`` checkpoints.

    Every process must call this (accelerate saves one RNG file per process); the main process
    writes the modules, renames the finished folder and prunes old ones.
    """
    output_dir = Path(output_dir)
    final = output_dir / f"checkpoint-{step}"
    staging = output_dir / f".checkpoint-{step}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        for name, module in (modules or {}).items():
            tensors = {key: value.detach().contiguous() for key, value in module.state_dict().items()}
            save_file(tensors, staging / f"{name}.safetensors")
        state = {"step": step, **(training_state or {})}
        marker = staging / COMPLETE_MARKER
        marker.write_text(json.dumps(state, indent=2))
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        if total_limit is not None and total_limit > 0:
            for old in list_checkpoints(output_dir)[:-total_limit]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: Accelerator, checkpoint: str | os.PathLike, modules: Mapping[str, Stateful]) -> dict:
    """Restore the accelerator state and ``modules`` from a checkpoint; returns its training state."""
    checkpoint = Path(checkpoint)
    missing = [name for name in modules if not (checkpoint / f"{name}.safetensors").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{checkpoint} has no {', '.join(name + '.safetensors' for name in missing)}: "
            "not a checkpoint of this training stage"
        )
    accelerator.load_state(str(checkpoint))
    for name, module in modules.items():
        module.load_state_dict(load_file(checkpoint / f"{name}.safetensors", device=str(accelerator.device)))
    return read_training_state(checkpoint)
