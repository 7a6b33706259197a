"""The allocator setting of the project's entry points."""

import ctypes
import ctypes.util
import sys

import pytest
import torch

from liftedgan_hf import cpu_memory


class MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                     "keepcost")
    ]  # fmt: skip


def _mmapped_bytes() -> int:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    if not hasattr(libc, "mallinfo2"):
        pytest.skip("glibc < 2.33 has no mallinfo2")
    libc.mallinfo2.restype = MallInfo2
    return libc.mallinfo2().hblkhd


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_big_tensors_come_from_the_heap_once_applied():
    assert cpu_memory.keep_freed_memory_in_heap()
    before = _mmapped_bytes()
    block = torch.ones(48 * 2**20 // 4)  # 48 MB, above glibc's largest default mmap threshold
    assert _mmapped_bytes() - before < 2**20
    del block


def test_other_platforms_are_left_alone(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert cpu_memory.keep_freed_memory_in_heap() is False


def test_the_command_line_applies_it(monkeypatch, tmp_path):
    from liftedgan_hf import cli

    calls = []
    monkeypatch.setattr(cpu_memory, "keep_freed_memory_in_heap", lambda: calls.append(True) or True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cli.main(["--seeds", "0", "--outdir", str(tmp_path)])
    assert calls == [True]
