"""GPU benchmark of soft_cross_entropy (run by experiments/gpu/bench_kernels_gpu.sh on a CUDA machine).

Times forward+backward of the cuda op, the Triton kernels and eager torch at trainer shapes with CUDA
events, records peak allocated memory, and reports achieved GB/s (compulsory bytes: target probs read
once per pass, weight and hidden read, grads written) and TFLOP/s (the chunk GEMMs) against the
device copy bandwidth it measures first. Writes one JSON to --out.
"""

from __future__ import annotations

import json

import torch

from runtime import ops
from runtime.config import StrictModel, config_from_cli


def _time(fn, reps: int) -> float:
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return sorted(times)[len(times) // 2]


def copy_bandwidth() -> float:
    x = torch.empty(2**30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    return 2 * x.numel() / _time(lambda: y.copy_(x), 10) / 1e9


def bench(impl: str, rows: int, hidden: int, vocab: int, dtype: torch.dtype, chunk: int, reps: int) -> dict:
    gen = torch.Generator(device="cuda").manual_seed(0)
    h = torch.randn(rows, hidden, device="cuda", dtype=dtype, generator=gen).requires_grad_()
    w = (torch.randn(vocab, hidden, device="cuda", dtype=dtype, generator=gen) * hidden ** -0.5).requires_grad_()
    p = torch.softmax(torch.randn(rows, vocab, device="cuda", generator=gen), -1).to(dtype)
    ops.set_impl(impl)

    def step():
        h.grad = w.grad = None
        loss, _ = ops.soft_cross_entropy(h, w, p, chunk=chunk)
        loss.mean().backward()
    reason = ops.why_unavailable(impl)
    if reason:
        return dict(impl=impl, error=reason)
    step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    seconds = _time(step, reps)
    elt = h.element_size()
    # p read in forward and backward; W, H read in both; dW, dH written.
    bytes_moved = elt * (2 * rows * vocab + 2 * (vocab * hidden + rows * hidden) + vocab * hidden + rows * hidden)
    gemms = 3 if impl == "reference" else 4
    return dict(impl=impl, dtype=str(dtype), fwd_bwd_ms=round(seconds * 1e3, 3),
                peak_extra_mib=round((torch.cuda.max_memory_allocated() - base) / 2**20, 1),
                compulsory_gbps=round(bytes_moved / seconds / 1e9, 1),
                tflops=round(gemms * 2 * rows * hidden * vocab / seconds / 1e12, 1))


class BenchGpuConfig(StrictModel):
    rows: int = 4096
    hidden: int = 576
    vocab: int = 32000
    chunk: int = 8192
    reps: int = 20
    out: str  # JSON path (required: the GPU script names its $OUT)


def main(argv: list[str] | None = None) -> int:
    args = config_from_cli(BenchGpuConfig, argv, description=__doc__.splitlines()[0], example="out=$OUT/b.json")
    out = dict(device=torch.cuda.get_device_name(), torch=torch.__version__, copy_gbps=round(copy_bandwidth(), 1),
               shape=dict(rows=args.rows, hidden=args.hidden, vocab=args.vocab, chunk=args.chunk), results=[])
    for dtype in (torch.bfloat16, torch.float32):
        for impl in ("reference", "cuda", "triton"):
            try:
                row = bench(impl, args.rows, args.hidden, args.vocab, dtype, args.chunk, args.reps)
            except Exception as err:  # one failing impl must not lose the others' numbers
                row = dict(impl=impl, dtype=str(dtype), error=f"{type(err).__name__}: {err}"[:500])
            out["results"].append(row)
            print(json.dumps(row), flush=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    return 0
