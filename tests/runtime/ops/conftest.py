"""Fixtures for the op tests: implementations skip with the loader's own reason when they cannot run here."""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    # Must be set before runtime/ops/soft_ce_triton.py is imported (its @triton.jit kernels read it).
    os.environ.setdefault("TRITON_INTERPRET", "1")

from runtime import ops  # noqa: E402


def require_impl(impl: str) -> None:
    reason = ops.why_unavailable(impl)
    if reason is not None:
        pytest.skip(f"{impl} implementation unavailable: {reason}")


@pytest.fixture(autouse=True)
def _restore_impl():
    yield
    ops.set_impl(None)


def make_case(n: int, h: int, v: int, dtype=torch.float64, seed: int = 0, zero_rows=(), peaked: bool = False):
    """Random hidden/weight/target probs; logits of std ~3 so the softmax is far from uniform."""
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, h, generator=gen, dtype=dtype)
    weight = torch.randn(v, h, generator=gen, dtype=dtype) * (3.0 / h ** 0.5)
    logits = torch.randn(n, v, generator=gen, dtype=dtype) * (6.0 if peaked else 2.0)
    probs = torch.softmax(logits, -1)
    for r in zero_rows:
        probs[r] = 0
    return hidden, weight, probs


@pytest.fixture(params=["avx2", "avx512"])
def small_m_isa(request):
    """Runs a small-M kernel test once per vector ISA (the AVX-512 one skips where the CPU lacks it), then goes
    back to the run-time choice."""
    require_impl("cpu")
    if not ops.small_m_isa():
        pytest.skip("the installed runtime._C predates llmsys::small_m_isa (run `make setup`)")
    try:
        ops.small_m_isa(request.param)
    except RuntimeError as err:
        pytest.skip(str(err).splitlines()[0])
    yield request.param
    ops.small_m_isa("auto")
