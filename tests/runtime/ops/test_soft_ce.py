"""Fused soft cross-entropy: every implementation vs the float64 pure-torch reference (loss, argmax, grads)."""

from __future__ import annotations

import pytest
import torch

from runtime import ops
from runtime.ops import soft_cross_entropy_reference
from tests.runtime.ops.conftest import make_case, require_impl

FUSED = ["cpu", "triton", "cuda"]
# (N, H, V, chunk): vocab a multiple of the chunk, not a multiple, smaller than one chunk, chunk of 1.
SHAPES = [(16, 32, 256, 64), (13, 24, 301, 64), (7, 40, 50, 2048), (5, 16, 33, 1)]
# fp32 kernels against a float64 reference: loss is a sum over V terms, so compare relative to its scale.
TOL = {"cpu": 1e-4, "triton": 1e-4, "cuda": 2e-3}


def naive_loss(hidden, weight, probs):
    """Written out by hand (no log_softmax) to anchor the reference itself."""
    z = hidden @ weight.t()
    lse = z.max(-1, keepdim=True).values + (z - z.max(-1, keepdim=True).values).exp().sum(-1, keepdim=True).log()
    return -(probs * (z - lse)).sum(-1)


def device_for(impl):
    return "cuda" if impl in ("cuda", "triton") and torch.cuda.is_available() else "cpu"


def run(impl, hidden, weight, probs, row_mask=None, chunk=64, dtype=torch.float32):
    """Loss, argmax and grads of sum(loss * row_weights) under `impl`, computed in `dtype` on its device."""
    dev = device_for(impl)
    h = hidden.detach().to(dev, dtype).clone().requires_grad_()
    w = weight.detach().to(dev, dtype).clone().requires_grad_()
    mask = None if row_mask is None else row_mask.to(dev)
    ops.set_impl(impl)
    loss, argmax = ops.soft_cross_entropy(h, w, probs.to(dev, dtype), row_mask=mask, chunk=chunk)
    row_weights = torch.linspace(0.5, 2.0, loss.shape[0], dtype=loss.dtype, device=dev)
    (loss * row_weights).sum().backward()
    return [t.detach().cpu().double() if t.is_floating_point() else t.cpu() for t in (loss, argmax, h.grad, w.grad)]


def reference(hidden, weight, probs, row_mask=None):
    return run("reference", hidden, weight, probs, row_mask, dtype=torch.float64)


def assert_close(got, want, tol):
    scale = want.abs().max().clamp_min(1.0)
    assert (got - want).abs().max() <= tol * scale, f"max err {(got - want).abs().max():.3e} (scale {scale:.3e})"


def test_reference_matches_hand_written_formula():
    hidden, weight, probs = make_case(9, 12, 70)
    loss, argmax = soft_cross_entropy_reference(hidden, weight, probs)
    torch.testing.assert_close(loss, naive_loss(hidden, weight, probs))
    assert torch.equal(argmax, (hidden @ weight.t()).argmax(-1))


@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matches_float64_reference(impl, shape):
    require_impl(impl)
    n, h, v, chunk = shape
    hidden, weight, probs = make_case(n, h, v, zero_rows=(1,))
    got = run(impl, hidden, weight, probs, chunk=chunk)
    want = reference(hidden, weight, probs)
    for g, w in zip(got, want):
        if g.is_floating_point():
            assert_close(g, w, TOL[impl])
    assert torch.equal(got[1], want[1]), "argmax differs"
    assert got[0][1] == 0 and got[2][1].abs().max() == 0, "a zero-probability row must give loss 0 and no grad"


@pytest.mark.parametrize("impl", FUSED)
def test_masked_rows_and_all_masked_batch(impl):
    require_impl(impl)
    hidden, weight, probs = make_case(11, 24, 97)
    mask = torch.ones(11, dtype=torch.bool)
    mask[[0, 4, 10]] = False
    got, want = run(impl, hidden, weight, probs, mask), reference(hidden, weight, probs, mask)
    for g, w in zip(got, want):
        assert_close(g.double(), w.double(), TOL[impl])
    assert torch.equal(got[1][~mask], torch.full((3,), -1)) and got[2][~mask].abs().max() == 0

    none = torch.zeros(11, dtype=torch.bool)
    loss, argmax, g_hidden, g_weight = run(impl, hidden, weight, probs, none)
    assert loss.abs().max() == 0 and (argmax == -1).all()
    assert g_hidden.abs().max() == 0 and g_weight.abs().max() == 0


@pytest.mark.parametrize("impl", ["cpu", "triton"])
def test_batched_leading_dims(impl):
    require_impl(impl)
    hidden, weight, probs = make_case(12, 16, 40)
    ops.set_impl(impl)
    dev = device_for(impl)
    loss, argmax = ops.soft_cross_entropy(hidden.float().view(3, 4, 16).to(dev), weight.float().to(dev),
                                          probs.float().view(3, 4, 40).to(dev), chunk=16)
    want, want_arg = soft_cross_entropy_reference(hidden, weight, probs)
    assert loss.shape == (3, 4) and argmax.shape == (3, 4)
    assert_close(loss.cpu().double().reshape(-1), want, 1e-4)
    assert torch.equal(argmax.cpu().reshape(-1), want_arg)


def test_cpu_gradcheck_with_mask():
    require_impl("cpu")
    hidden, weight, probs = make_case(6, 8, 37, peaked=True)
    mask = torch.tensor([1, 0, 1, 1, 0, 1], dtype=torch.bool)
    ops.set_impl("cpu")
    hidden.requires_grad_()
    weight.requires_grad_()
    assert torch.autograd.gradcheck(lambda h, w: ops.soft_cross_entropy(h, w, probs, mask, chunk=8)[0],
                                    (hidden, weight))


@pytest.mark.parametrize("with_mask", [False, True])
def test_cpu_opcheck(with_mask):
    require_impl("cpu")
    hidden, weight, probs = (t.float() for t in make_case(10, 16, 45))
    mask = torch.tensor([1, 1, 0, 1, 1, 1, 0, 1, 1, 1], dtype=torch.bool) if with_mask else None
    args = (hidden.requires_grad_(), weight.requires_grad_(), probs, mask, 16)
    torch.library.opcheck(torch.ops.llmsys.soft_ce_fwd.default, args)  # raises on any failed check


def test_cpu_under_torch_compile_fullgraph():
    require_impl("cpu")
    hidden, weight, probs = (t.float() for t in make_case(10, 16, 45))
    ops.set_impl("cpu")

    @torch.compile(fullgraph=True, backend="aot_eager")
    def step(h, w, p):
        loss, _ = ops.soft_cross_entropy(h, w, p, chunk=16)
        return loss.mean()

    h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
    step(h, w, probs).backward()
    want = reference(hidden, weight, probs)
    want_loss = want[0].mean()
    h2, w2 = hidden.double().requires_grad_(), weight.double().requires_grad_()
    soft_cross_entropy_reference(h2, w2, probs).__getitem__(0).mean().backward()
    assert_close(step(hidden, weight, probs).double(), want_loss, 1e-5)
    assert_close(h.grad.double(), h2.grad, 1e-4)
    assert_close(w.grad.double(), w2.grad, 1e-4)


def test_cpu_bfloat16_input_is_computed_in_fp32():
    require_impl("cpu")
    hidden, weight, probs = (t.bfloat16() for t in make_case(8, 16, 40))
    ops.set_impl("cpu")
    h = hidden.clone().requires_grad_()
    loss, _ = ops.soft_cross_entropy(h, weight, probs, chunk=16)
    loss.sum().backward()
    want, _ = soft_cross_entropy_reference(hidden.double(), weight.double(), probs.double())
    assert loss.dtype == torch.float32 and h.grad.dtype == torch.bfloat16
    assert_close(loss.double(), want, 1e-4)


def test_cpu_rejects_bad_shapes_with_clear_error():
    require_impl("cpu")
    hidden, weight, probs = (t.float() for t in make_case(4, 8, 20))
    with pytest.raises(RuntimeError, match="target_probs must be"):
        torch.ops.llmsys.soft_ce_fwd(hidden, weight, probs[:, :19], None, 8)
    with pytest.raises(RuntimeError, match="chunk must be positive"):
        torch.ops.llmsys.soft_ce_fwd(hidden, weight, probs, None, 0)


def test_cpu_bf16_gemms_under_autocast_match_fp32():
    """Under CPU autocast the op runs its GEMMs in bf16 (rows bucketed to 64 with zero padding) and keeps the
    row statistics in fp32: loss and gradients stay within bf16 rounding of the fp32 op, masked rows stay 0."""
    require_impl("cpu")
    ops.set_impl("cpu")
    torch.manual_seed(0)
    n, h, v = 70, 48, 300  # 70 rows: not a multiple of the bucket; vocab not a multiple of the chunk
    hidden, weight = torch.randn(n, h), torch.randn(v, h) * 0.2
    probs = torch.softmax(torch.randn(n, v) * 2, -1)
    mask = torch.rand(n) < 0.7
    out = {}
    for autocast in (False, True):
        hh, ww = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss, argmax = ops.soft_cross_entropy(hh, ww, probs, row_mask=mask, chunk=64)
        (loss * torch.linspace(0.5, 1.5, n)).sum().backward()
        out[autocast] = (loss.detach(), argmax, hh.grad, ww.grad)
    (l32, a32, gh32, gw32), (l16, a16, gh16, gw16) = out[False], out[True]
    assert l16.dtype == torch.float32 and gh16.dtype == gw16.dtype == torch.float32
    assert not torch.equal(l16, l32)  # the bf16 path really ran
    assert torch.allclose(l16, l32, rtol=1e-2, atol=2e-2)
    assert bool((l16[~mask] == 0).all() and (a16[~mask] == -1).all() and (gh16[~mask] == 0).all())
    assert (a16[mask] == a32[mask]).float().mean() > 0.9
    for got, want in ((gh16, gh32), (gw16, gw32)):
        assert float((got - want).norm() / want.norm()) < 2e-2


def test_cpu_bf16_gemm_opcheck_and_refusal_for_float64():
    require_impl("cpu")
    hidden, weight, probs = (t.float() for t in make_case(10, 16, 45))
    args = (hidden.requires_grad_(), weight.requires_grad_(), probs, None, 16, True)
    torch.library.opcheck(torch.ops.llmsys.soft_ce_fwd.default, args)
    with pytest.raises(RuntimeError, match="bf16_gemm needs float32"):
        torch.ops.llmsys.soft_ce_fwd(hidden.double(), weight.double(), probs.double(), None, 16, True)
