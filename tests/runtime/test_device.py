"""runtime.device: giving freed heap pages back to the OS."""

import platform

import pytest
import torch

from runtime.device import release_free_host_memory


def _rss_kib() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise AssertionError("no RssAnon in /proc/self/status")


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_release_free_host_memory_returns_freed_heap_pages():
    # many 64 KiB blocks (below glibc's mmap threshold: they live on the heap), all freed but one at the end,
    # which pins the heap top so plain free() cannot shrink it; only malloc_trim hands the middle back
    blocks = [torch.empty(16 * 1024, dtype=torch.float32).fill_(1.0) for _ in range(2000)]  # ~125 MiB
    keep = blocks[-1]
    del blocks
    before = _rss_kib()
    assert release_free_host_memory() is True
    after = _rss_kib()
    assert before - after > 50 * 1024, (before, after)
    assert keep.sum() == keep.numel()
