"""Implementation choice: automatic, forced by set_impl / $LLMSYS_OPS_IMPL, and clear errors."""

from __future__ import annotations

import pytest
import torch

from runtime import ops
from tests.runtime.ops.conftest import make_case


def test_auto_choice_on_cpu_is_the_compiled_op_when_built():
    expected = "cpu" if ops.why_unavailable("cpu") is None else "reference"
    assert ops.current_impl("cpu") == expected


def test_override_by_set_impl_and_env(monkeypatch):
    ops.set_impl("reference")
    assert ops.current_impl("cpu") == "reference"
    ops.set_impl(None)
    monkeypatch.setenv("LLMSYS_OPS_IMPL", "triton")
    assert ops.current_impl("cpu") == "triton"


def test_unknown_impl_is_rejected():
    with pytest.raises(ValueError, match="unknown soft_cross_entropy implementation"):
        ops.set_impl("fast")
    assert "unknown implementation" in ops.why_unavailable("fast")


def test_forced_unavailable_impl_raises_with_reason():
    if torch.cuda.is_available():
        pytest.skip("CUDA present: the cuda impl may be available")
    ops.set_impl("cuda")
    hidden, weight, probs = make_case(3, 4, 5, dtype=torch.float32)
    with pytest.raises(RuntimeError, match="unavailable: no CUDA device"):
        ops.soft_cross_entropy(hidden, weight, probs)


def test_target_probs_with_grad_and_bad_shape_are_rejected():
    hidden, weight, probs = make_case(3, 4, 5)
    with pytest.raises(ValueError, match="constant"):
        ops.soft_cross_entropy(hidden, weight, probs.requires_grad_())
    with pytest.raises(ValueError, match="target_probs must be"):
        ops.soft_cross_entropy(hidden, weight, probs.detach()[:, :4])
