"""`make bench-speculative-specforge`: draft-training tokens/s and peak RSS at SpecForge's CPU configuration.

SpecForge 0.2.0 trained offline on this machine type at 75-79 target tok/s with a peak RSS of 2.4-2.6 GB (fp32
draft, ttt 7, draft vocab 32000, max_len 512, batch 1, 2 threads; issue 19). Each variant here is that run with
our trainer (`python -m speculative train`, offline shards, `max_steps` steps) in its own subprocess, back to
back; its peak RSS is the child's own (os.wait4's rusage of that pid), tokens/s is the aggregate over steps 3..N (the first
two warm caches and kernels), from the run's metrics.jsonl. The load average is recorded before and after each.

    python -m speculative bench-specforge offline_dir=DIR train_config=YAML out=RESULTS.json
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from runtime.checkpoint import atomic_write_json
from runtime.config import StrictModel, config_from_cli

SPECFORGE = {"target_tok_s": [75.0, 79.0], "peak_rss_gb": [2.4, 2.6]}  # issue 19, offline, patched loss

# name -> overrides on top of the SpecForge configuration
DEFAULT_VARIANTS = {
    "fp32": [],
    "fp32+recompute": ["recompute_ttt=true"],
    "bf16": ["precision=bf16"],
    "bf16+recompute": ["precision=bf16", "recompute_ttt=true"],
}


class BenchSpecForgeConfig(StrictModel):
    offline_dir: str  # prepared shards (`python -m speculative prepare ... data.limit=48 out_dir=DIR`)
    train_config: str  # the offline DraftTrainConfig YAML (the make target passes offline_train_smollm2.yaml)
    max_steps: int = 24
    threads: int = 2
    variants: dict[str, list[str]] = DEFAULT_VARIANTS
    extra: list[str] = []  # overrides for every variant
    out: str = "speculative_train_specforge.json"  # the result JSON's path


def specforge_overrides(cfg: BenchSpecForgeConfig, run_dir: str) -> list[str]:
    return [f"offline_dir={cfg.offline_dir}", "data.draft_vocab_size=32000", "data.max_length=512",
            "optim.batch_size=1", "optim.grad_accum=1", "ttt_length=7", f"max_steps={cfg.max_steps}",
            f"threads={cfg.threads}", f"ckpt_every={cfg.max_steps}", "export=false", "tensorboard=false",
            f"out_dir={run_dir}"]


def throughput(metrics: Path) -> dict[str, float]:
    rows = [r for r in map(json.loads, metrics.read_text().splitlines()) if "tokens_per_s" in r]
    if len(rows) < 3:
        raise RuntimeError(f"{metrics}: {len(rows)} steps logged, need >= 3")
    timed = rows[2:]
    seconds = rows[-1]["time"] - rows[1]["time"]
    return {"steps": len(rows), "timed_steps": len(timed), "tokens": sum(r["tokens"] for r in timed),
            "target_tok_s": sum(r["tokens"] for r in timed) / seconds,
            "final_loss": rows[-1]["loss"], "final_acc_0": rows[-1]["acc_0"]}


def run_variant(cfg: BenchSpecForgeConfig, overrides: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-specforge-") as run_dir:
        cmd = [sys.executable, "-m", "speculative", "train", "--config", cfg.train_config,
               *specforge_overrides(cfg, run_dir), *cfg.extra, *overrides]
        load_before = os.getloadavg()
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        err = proc.stderr.read()  # to EOF (the child exits); then reap it ourselves for its own rusage
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code:
            raise RuntimeError(f"{' '.join(cmd)} failed ({code}):\n{err[-3000:]}")
        out = throughput(Path(run_dir) / "metrics.jsonl")
    return {"overrides": overrides, **out, "peak_rss_gb": usage.ru_maxrss * 1024 / 1e9, "wall_s": wall,
            "load_before": load_before, "load_after": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_cli(BenchSpecForgeConfig, argv, description=__doc__.splitlines()[0],
                          example="offline_dir=/tmp/hs48 train_config=offline_train.yaml")
    results = {}
    for name, overrides in cfg.variants.items():
        res = results[name] = run_variant(cfg, overrides)
        print(f"{name:16s} {res['target_tok_s']:7.1f} target tok/s  peak RSS {res['peak_rss_gb']:.2f} GB  load "
              f"{res['load_before'][0]:.2f} -> {res['load_after'][0]:.2f}", flush=True)
    best = max(results, key=lambda k: results[k]["target_tok_s"] if results[k]["peak_rss_gb"] <= 1.3 else 0)
    doc = {"config": cfg.model_dump(), "specforge": SPECFORGE, "variants": results, "best": {"name": best,
           **results[best]}, "env": {"device": platform.processor() or platform.machine(), "threads": cfg.threads,
           "torch": torch.__version__, "amx": bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())}}
    atomic_write_json(cfg.out, doc)
    print(f"wrote {cfg.out}")
    return 0
