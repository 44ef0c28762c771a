"""Device, dtype, threads and seeding: one place decides, everything else asks."""

from __future__ import annotations

import ctypes
import functools
import os
import random
from typing import Any

import numpy as np
import torch


def pick_device(device: Any = None) -> torch.device:
    """`device` if given, else $LLMSYS_DEVICE, else cuda when available, else cpu."""
    if device is None:
        device = os.environ.get("LLMSYS_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch has no CUDA device here")
    return dev


def default_dtype(device: Any = None) -> torch.dtype:
    """fp32 on CPU (no AVX-512 bf16 here), bf16 on CUDA."""
    return torch.bfloat16 if pick_device(device).type == "cuda" else torch.float32


def parse_dtype(name: str | torch.dtype | None, device: Any = None) -> torch.dtype:
    if name is None or name == "auto":
        return default_dtype(device)
    if isinstance(name, torch.dtype):
        return name
    table = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
             "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
    if name not in table:
        raise ValueError(f"unknown dtype '{name}'; use one of {sorted(table)} or 'auto'")
    return table[name]


def set_threads(n: int | None = None) -> int:
    """Torch intra-op threads: `n`, else $LLMSYS_THREADS, else all cores (per local process)."""
    if n is None:
        env = os.environ.get("LLMSYS_THREADS")
        if env:
            n = int(env)
        else:
            local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
            n = max(1, (os.cpu_count() or 1) // local)
    torch.set_num_threads(n)
    return n


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def release_free_host_memory() -> bool:
    """Hand glibc's free heap pages back to the OS (malloc_trim). A training step frees ~100s of MB of
    activations; glibc keeps them mapped, so resident memory ratchets up across steps of varying length.
    Returns False where there is no glibc (the call is skipped)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@functools.cache
def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
