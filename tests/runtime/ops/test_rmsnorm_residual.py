"""Fused residual add + RMSNorm (kernel 2) vs the float64 reference, gradcheck, opcheck, torch.compile."""

from __future__ import annotations

import torch

from runtime import ops
from runtime.ops.reference import rmsnorm_residual_reference
from tests.runtime.ops.conftest import require_impl


def inputs(shape=(3, 5, 24), dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=gen, dtype=dtype).requires_grad_() for s in (shape, shape, shape[-1:])]


def test_reference_matches_llama_rmsnorm_formula():
    x, r, w = inputs()
    y, s = rmsnorm_residual_reference(x, r, w, 1e-6)
    s_want = x + r
    torch.testing.assert_close(s, s_want)
    torch.testing.assert_close(y, w * s_want / torch.sqrt(s_want.pow(2).mean(-1, keepdim=True) + 1e-6))


def test_cpu_matches_reference_and_gradients():
    require_impl("cpu")
    x, r, w = inputs(shape=(7, 33))
    gy, gs = torch.randn(7, 33, dtype=torch.float64), torch.randn(7, 33, dtype=torch.float64)
    ops.set_impl("cpu")
    y, s = ops.rmsnorm_residual(x, r, w, 1e-5)
    got = torch.autograd.grad((y * gy).sum() + (s * gs).sum(), (x, r, w))
    y_ref, s_ref = rmsnorm_residual_reference(x, r, w, 1e-5)
    want = torch.autograd.grad((y_ref * gy).sum() + (s_ref * gs).sum(), (x, r, w))
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(s, s_ref)
    for g, wg in zip(got, want):
        torch.testing.assert_close(g, wg)


def test_cpu_gradcheck():
    require_impl("cpu")
    ops.set_impl("cpu")
    assert torch.autograd.gradcheck(lambda x, r, w: ops.rmsnorm_residual(x, r, w, 1e-5), inputs(shape=(4, 9)))


def test_cpu_opcheck_and_compile():
    require_impl("cpu")
    x, r, w = (t.detach().float().requires_grad_() for t in inputs())
    torch.library.opcheck(torch.ops.llmsys.rmsnorm_residual_fwd.default, (x, r, w, 1e-5))
    ops.set_impl("cpu")
    fn = torch.compile(lambda x, r, w: ops.rmsnorm_residual(x, r, w, 1e-5)[0].square().sum(), fullgraph=True,
                       backend="aot_eager")
    torch.testing.assert_close(fn(x, r, w), rmsnorm_residual_reference(x, r, w, 1e-5)[0].square().sum())
