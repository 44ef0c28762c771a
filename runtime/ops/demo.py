"""`python -m runtime ops-demo`: the fused ops next to the eager reference on a small batch (~10 s on CPU)."""

from __future__ import annotations

import os
import time

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before the Triton kernels are first imported

from runtime import ops
from runtime.config import StrictModel, config_from_cli
from runtime.ops.reference import rmsnorm_residual_reference


class OpsDemoConfig(StrictModel):
    rows: int = 512
    hidden: int = 576
    vocab: int = 8000


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_cli(OpsDemoConfig, argv, description=__doc__, example="vocab=32000")
    torch.manual_seed(0)
    n, h, v = cfg.rows, cfg.hidden, cfg.vocab
    hidden = torch.randn(n, h, requires_grad=True)
    weight = (torch.randn(v, h) * h ** -0.5).requires_grad_()
    probs = torch.softmax(torch.randn(n, v) * 2, -1)
    mask = torch.rand(n) > 0.25
    print(f"soft_cross_entropy N={n} H={h} V={v}; automatic impl on cpu: {ops.current_impl('cpu')}")
    for impl in ("reference", "cpu", "triton"):
        reason = ops.why_unavailable(impl)
        if reason:
            print(f"  {impl:9s} skipped: {reason}")
            continue
        ops.set_impl(impl)
        # The Triton interpreter runs numpy per tile: a 16 x 64-column slice keeps it to seconds.
        rows = ((hidden[:16], weight[:64], probs[:16, :64], mask[:16]) if impl == "triton" and not torch.cuda.is_available()
                else (hidden, weight, probs, mask))
        hidden.grad = weight.grad = None
        start = time.perf_counter()
        loss, argmax = ops.soft_cross_entropy(*rows[:3], row_mask=rows[3])
        loss.sum().backward()
        note = " (16 rows x 64 vocab, interpreted)" if rows[0].shape[0] == 16 else ""
        want, _ = ops.soft_cross_entropy_reference(*[t.detach() for t in rows[:3]], row_mask=rows[3])
        print(f"  {impl:9s} loss sum {loss.sum().item():.4f}  |grad W| {weight.grad.norm().item():.4f}  "
              f"max |loss - reference| {(loss - want).abs().max().item():.1e}  "
              f"{time.perf_counter() - start:.2f} s{note}")
    ops.set_impl(None)
    x, r, w = torch.randn(n, h), torch.randn(n, h), torch.ones(h)
    y, _ = ops.rmsnorm_residual(x, r, w)
    want, _ = rmsnorm_residual_reference(x, r, w, 1e-6)
    print(f"rmsnorm_residual [{n},{h}] impl {ops.current_impl('cpu')}: max |fused - reference| = "
          f"{(y - want).abs().max().item():.2e}")
    return 0
