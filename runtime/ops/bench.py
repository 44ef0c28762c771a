"""`make bench-kernels`: fused ops vs eager torch on CPU, time and peak memory at trainer shapes.

Each (op, implementation) runs in its own subprocess; peak memory is its high-water RSS during the steps
(reset through /proc/self/clear_refs once the inputs exist) minus the RSS it had with only the inputs
allocated (CPU torch has no allocator statistics). Writes
<results>/bench_kernels.json (atomically; `out=` or runtime.paths.results_dir()) and a markdown table next to it.

    python -m runtime bench-kernels                   # trainer shapes: N=B*T=4096, H=576, V=32000
    python -m runtime bench-kernels rows=512 vocab=8000 reps=1   # quick look
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import torch

from runtime.config import StrictModel, config_from_cli


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as f:  # "5" resets VmHWM to the current RSS (Linux >= 4.0)
        f.write("5")


def _case_soft_ce(impl: str, rows: int, hidden: int, vocab: int, chunk: int):
    from runtime import ops
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(rows, hidden, generator=gen).requires_grad_()
    w = (torch.randn(vocab, hidden, generator=gen) * hidden ** -0.5).requires_grad_()
    p = torch.softmax(torch.randn(rows, vocab, generator=gen), -1)
    ops.set_impl(impl)

    def step():
        h.grad = w.grad = None
        loss, _ = ops.soft_cross_entropy(h, w, p, chunk=chunk)
        loss.mean().backward()
    # fwd GEMM + (recompute GEMM for fused) + 2 backward GEMMs, 2*N*H*V flops each
    gemms = 3 if impl == "reference" else 4
    return step, gemms * 2 * rows * hidden * vocab


def _case_rmsnorm(impl: str, rows: int, hidden: int, vocab: int, chunk: int):
    from runtime import ops
    gen = torch.Generator().manual_seed(0)
    x, r = (torch.randn(rows, hidden, generator=gen).requires_grad_() for _ in range(2))
    w = torch.randn(hidden, generator=gen).requires_grad_()
    g = torch.randn(rows, hidden, generator=gen)
    ops.set_impl(impl)

    def step():
        x.grad = r.grad = w.grad = None
        y, s = ops.rmsnorm_residual(x, r, w, 1e-5)
        ((y * g).sum() + (s * g).sum()).backward()
    return step, 0


CASES = {"soft_cross_entropy": _case_soft_ce, "rmsnorm_residual": _case_rmsnorm}


def measure_one(op: str, impl: str, rows: int, hidden: int, vocab: int, chunk: int, reps: int) -> dict:
    """Runs inside the child process."""
    step, flops = CASES[op](impl, rows, hidden, vocab, chunk)
    _reset_peak_rss()
    base = _status_bytes("VmRSS")
    step()  # warm-up (the first step allocates everything a step needs)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    peak = _status_bytes("VmHWM")
    best = min(times)
    out = dict(op=op, impl=impl, fwd_bwd_s=round(best, 4), median_s=round(sorted(times)[len(times) // 2], 4),
               peak_extra_mib=round((peak - base) / 2**20, 1), threads=torch.get_num_threads())
    if flops:
        out["gflops"] = round(flops / best / 1e9, 1)
    return out


class BenchKernelsConfig(StrictModel):
    rows: int = 4096
    hidden: int = 576
    vocab: int = 32000
    chunk: int = 2048
    reps: int = 3
    out: str | None = None  # JSON path; None: <results_dir>/bench_kernels.json
    child: list[str] | None = None  # internal: [op, impl] measured in this (child) process


def run_child(cfg: BenchKernelsConfig, op: str, impl: str, rows: int) -> dict:
    cmd = [sys.executable, "-m", "runtime", "bench-kernels", f"child=[{op},{impl}]", f"rows={rows}",
           f"hidden={cfg.hidden}", f"vocab={cfg.vocab}", f"chunk={cfg.chunk}", f"reps={cfg.reps}"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return dict(op=op, impl=impl, error=done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [f"# bench-kernels ({meta['device']}, {meta['threads']} threads, torch {meta['torch']})", "",
             f"soft_cross_entropy: N={meta['rows']}, H={meta['hidden']}, V={meta['vocab']}, chunk={meta['chunk']}, "
             f"fp32, forward+backward; rmsnorm_residual: [{meta['rows']}, {meta['hidden']}] fp32.", "",
             "| op | impl | fwd+bwd (s, best) | median (s) | GFLOP/s | peak extra memory (MiB) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['op']} | {r['impl']} | error: {r['error']} | | | |")
        else:
            lines.append(f"| {r['op']} | {r['impl']} | {r['fwd_bwd_s']} | {r['median_s']} | {r.get('gflops', '')} | "
                         f"{r['peak_extra_mib']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = config_from_cli(BenchKernelsConfig, argv, description="fused ops vs eager torch: time and peak memory",
                           example="reps=2 out=bench.json")
    if args.child:
        print(json.dumps(measure_one(*args.child, args.rows, args.hidden, args.vocab, args.chunk, args.reps)))
        return 0

    from runtime import ops
    from runtime.checkpoint import atomic_write_json, atomic_write_text
    from runtime.paths import results_dir
    from runtime.results import with_provenance
    reason = ops.why_unavailable("cpu")
    if reason:
        raise SystemExit(f"bench-kernels needs the compiled CPU op: {reason}")
    meta = dict(device="cpu", threads=torch.get_num_threads(), torch=torch.__version__, rows=args.rows,
                load_average_1min_at_start=round(os.getloadavg()[0], 1),
                hidden=args.hidden, vocab=args.vocab, chunk=args.chunk, reps=args.reps,
                command=" ".join(["python -m runtime bench-kernels", *(argv or [])]))
    results = []
    for op, impls in (("soft_cross_entropy", ("reference", "cpu")), ("rmsnorm_residual", ("reference", "cpu"))):
        for impl in impls:
            results.append(run_child(args, op, impl, args.rows))
            print(json.dumps(results[-1]), flush=True)
    out = args.out or str(results_dir() / "bench_kernels.json")
    atomic_write_json(out, with_provenance(dict(meta=meta, results=results), config=args.model_dump()))
    table = markdown(results, meta)
    atomic_write_text(out.removesuffix(".json") + ".md", table)
    print(table)
    return 0
