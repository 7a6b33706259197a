"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from liftedgan_hf.cpu_memory import keep_freed_memory_in_heap


def median_seconds(function: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``function()`` over ``repeats`` runs after ``warmup`` runs."""
    return interleaved_median_seconds({"only": function}, repeats, warmup)["only"]


def interleaved_median_seconds(
    functions: dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 1
) -> dict[str, float]:
    """Median wall time of each function, timed in turns: one run of each per round.

    A shared CPU's speed drifts during a run (measured here: the same call 1.7x slower a minute
    later), so timing one function's runs after another's skews their ratio; in turns, every
    function sees the same drift and ratios stay meaningful.
    """
    for function in functions.values():
        for _ in range(warmup):
            function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def add_allocator_flag(parser: argparse.ArgumentParser) -> None:
    """``--keep-freed-memory``: time with the allocator setting of the project's entry points."""
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="first apply liftedgan_hf.cpu_memory.keep_freed_memory_in_heap(), as liftedgan-generate and training do",
    )


def apply_allocator_flag(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.keep_freed_memory and not keep_freed_memory_in_heap():
        parser.error("--keep-freed-memory needs glibc (Linux)")
