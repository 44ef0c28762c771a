"""`make bench-speculative-parallel`: online vs offline draft training throughput, 1 vs 2 ranks, offline bytes/token.

Every run is a fresh subprocess (`python -m speculative train`, or torchrun for 2 ranks) on the
same data/seed; throughput = mean tokens/s over optimizer steps after the first (warm-up). Both rank
counts process the same global batch per step (1 rank: grad_accum 2; 2 ranks: grad_accum 1 each).
Writes `out` (default <results>/bench_speculative_parallel.json, runtime.paths.results_dir()).

    python -m speculative bench-parallel train_config=experiments/configs/speculative/dist_bench.yaml
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from runtime.checkpoint import atomic_write_json
from runtime.config import StrictModel, config_from_cli, load_config
from runtime.logging import get_logger, read_jsonl
from runtime.paths import cache_dir, repo_root, results_dir
from runtime.results import with_provenance
from speculative.offline.config import HiddenStatesConfig
from speculative.offline.prepare import prepare_hidden_states
from speculative.offline.shards import bytes_per_token
from speculative.parallel.config import DistTrainConfig

log = get_logger("speculative.parallel.bench")


class BenchParallelConfig(StrictModel):
    train_config: str  # the DistTrainConfig YAML every run shares, e.g. dist_bench.yaml
    out: str | None = None  # None: <results>/bench_speculative_parallel.json
    timeout: float = Field(1800, gt=0)  # seconds per training run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], timeout: float) -> float:
    env = {**os.environ, "PYTHONPATH": str(repo_root()), "LLMSYS_NO_PROGRESS": "1", "LLMSYS_DEVICE": "cpu"}
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=repo_root(), env=env, capture_output=True, text=True, timeout=timeout)
    if res.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    return time.perf_counter() - t0


def train_run(config: str, out: Path, nproc: int, overrides: list[str], timeout: float) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    args = ["--config", config, f"out_dir={out}", *overrides]
    if nproc == 1:
        cmd = [sys.executable, "-m", "speculative", "train", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", f"--master_port={_free_port()}",
               "-m", "speculative", "train", *args]
    wall = _run(cmd, timeout)
    rows = read_jsonl(out / "metrics.jsonl")
    timed = rows[1:] or rows
    return {"ranks": nproc, "wall_s": round(wall, 1), "steps": len(rows),
            "tokens_per_step": sum(r["tokens"] for r in rows) / len(rows),
            "train_tokens_per_s": sum(r["tokens_per_s"] for r in timed) / len(timed),
            "losses": [round(r["loss"], 4) for r in rows]}


def main(argv: list[str] | None = None) -> int:
    bench = config_from_cli(BenchParallelConfig, argv, description=__doc__, example="train_config=FILE timeout=900")
    config = str(Path(bench.train_config).resolve())  # the runs start in the repo root
    cfg = load_config(DistTrainConfig, config)
    work = cache_dir("speculative/bench_parallel")  # shards + checkpoints are scratch; only the JSON is a result
    hs = work / "hidden_states"
    shutil.rmtree(hs, ignore_errors=True)
    prep_cfg = HiddenStatesConfig(data=cfg.data, target=cfg.target, out_dir=str(hs), storage_dtype="bf16",
                             shard_size=8, batch_size=2, threads=cfg.threads)
    prep = prepare_hidden_states(prep_cfg)
    offline = ["target_kind=offline", f"offline_dir={hs}"]
    runs = {}
    for name, nproc, extra in [("online_1rank", 1, ["target_kind=hf"]),
                               ("offline_1rank", 1, offline),
                               ("online_2ranks", 2, ["target_kind=tp", "parallel.tp=1", "optim.grad_accum=1"]),
                               ("offline_2ranks", 2, [*offline, "optim.grad_accum=1"])]:
        log.info("bench run %s", name)
        runs[name] = train_run(config, work / name, nproc, extra, bench.timeout)
        log.info("%s: %s", name, runs[name])
    report = {
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0], "platform": platform.platform(),
                    "threads_per_rank": cfg.threads,
                    "note": "2-core CPU shared with other jobs (see load_avg_1m); same global batch per step"},
        "config": bench.train_config, "target": cfg.target.model,
        "offline_format": {"storage_dtype": "bf16", "bytes_per_token": prep["bytes_per_token"],
                           "bytes_per_token_measured": prep["bytes_per_token_measured"], "tokens": prep["tokens"],
                           "prepare_s": round(prep["seconds"], 1),
                           "bytes_per_token_H4096": {d: bytes_per_token(4096, d) for d in ("bf16", "fp16", "fp32")}},
        "runs": runs,
        "speedup_offline_vs_online_1rank": runs["offline_1rank"]["train_tokens_per_s"]
        / runs["online_1rank"]["train_tokens_per_s"],
        "speedup_2ranks_vs_1rank_online": runs["online_2ranks"]["train_tokens_per_s"]
        / runs["online_1rank"]["train_tokens_per_s"],
    }
    atomic_write_json(bench.out or results_dir() / "bench_speculative_parallel.json",
                      with_provenance(report, seed=cfg.seed))
    print(json.dumps(report, indent=2))
    return 0
