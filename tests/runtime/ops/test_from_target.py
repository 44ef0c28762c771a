"""Soft CE against the target head's logits (both heads chunked) vs the float64 reference."""

from __future__ import annotations

import pytest
import torch

from runtime import ops
from runtime.ops.chunked import soft_cross_entropy_from_target_chunked
from runtime.ops.reference import soft_cross_entropy_from_target_reference
from tests.runtime.ops.conftest import require_impl


def case(n=10, h=12, ht=20, v=53, seed=1):
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, h, generator=gen, dtype=torch.float64)
    weight = torch.randn(v, h, generator=gen, dtype=torch.float64) * 0.5
    t_hidden = torch.randn(n, ht, generator=gen, dtype=torch.float64)
    t_weight = torch.randn(v, ht, generator=gen, dtype=torch.float64) * 0.5
    mask = torch.ones(n, dtype=torch.bool)
    mask[[1, n - 3]] = False
    return hidden, weight, t_hidden, t_weight, mask


def loss_and_grads(fn, hidden, weight, t_hidden, t_weight, mask):
    h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
    loss, argmax = fn(h, w, t_hidden, t_weight, mask)
    row_w = torch.linspace(0.5, 2, loss.shape[0], dtype=loss.dtype)
    return loss, argmax, *torch.autograd.grad((loss * row_w).sum(), (h, w))


def check_against_reference(fn, mask_rows=True, **case_kw):
    hidden, weight, t_hidden, t_weight, mask = case(**case_kw)
    mask = mask if mask_rows else None
    got = loss_and_grads(fn, hidden, weight, t_hidden, t_weight, mask)
    want = loss_and_grads(soft_cross_entropy_from_target_reference, hidden, weight, t_hidden, t_weight, mask)
    torch.testing.assert_close(got[0], want[0])
    assert torch.equal(got[1], want[1])
    if mask is not None:
        assert (got[1][~mask] == -1).all() and got[2][~mask].abs().max() == 0
    for g, w in zip(got[2:], want[2:]):
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize("chunk", [7, 64, 4096])
def test_chunked_torch_matches_reference(chunk):
    check_against_reference(lambda *a: soft_cross_entropy_from_target_chunked(*a, chunk=chunk))


@pytest.mark.parametrize("chunk", [7, 64, 4096])
@pytest.mark.parametrize("mask_rows", [False, True])
def test_cpu_op_matches_reference(chunk, mask_rows):
    require_impl("cpu")
    ops.set_impl("cpu")
    check_against_reference(lambda *a: ops.soft_cross_entropy_from_target(*a, chunk=chunk), mask_rows)


def test_cpu_op_gradcheck_and_opcheck():
    require_impl("cpu")
    hidden, weight, t_hidden, t_weight, mask = case(n=5, h=4, ht=6, v=19)
    ops.set_impl("cpu")
    assert torch.autograd.gradcheck(
        lambda h, w: ops.soft_cross_entropy_from_target(h, w, t_hidden, t_weight, mask, chunk=8)[0],
        (hidden.requires_grad_(), weight.requires_grad_()))
    args = (hidden.detach().float().requires_grad_(), weight.detach().float().requires_grad_(), t_hidden.float(),
            t_weight.float(), mask, 8)
    torch.library.opcheck(torch.ops.llmsys.soft_ce_from_target_fwd.default, args)


def test_all_masked_batch():
    require_impl("cpu")
    hidden, weight, t_hidden, t_weight, _ = case()
    ops.set_impl("cpu")
    h = hidden.clone().requires_grad_()
    loss, argmax = ops.soft_cross_entropy_from_target(h, weight, t_hidden, t_weight, torch.zeros(10, dtype=torch.bool))
    loss.sum().backward()
    assert loss.abs().max() == 0 and (argmax == -1).all() and h.grad.abs().max() == 0


def test_reference_equals_probs_path():
    hidden, weight, t_hidden, t_weight, _ = case()
    probs = torch.softmax(t_hidden @ t_weight.t(), -1)
    got, _ = soft_cross_entropy_from_target_reference(hidden, weight, t_hidden, t_weight)
    torch.testing.assert_close(got, ops.soft_cross_entropy_reference(hidden, weight, probs)[0])
