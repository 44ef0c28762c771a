"""Measure the recipe knobs on prepared offline shards instead of assuming them.

    python -m speculative recipe offline_dir=DIR out=FILE.json \
        [vocab=[4096,8192,16384,32000]] [ttt=[3,4,7]] [steps=6]

- coverage: the share of loss rows whose full-vocab target argmax lies in the top-N draft vocab (the
  ceiling of acc_0 for that N; the draft vocab is built as training builds it, from the same data);
- throughput: target tokens/s of real optimizer steps (offline target, batch 1) for each (ttt, vocab),
  after one warm-up step; the draft is untrained, which does not change the cost.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from pydantic import Field

from runtime.checkpoint import atomic_write_json
from runtime.config import StrictModel, config_from_cli, load_config
from runtime.device import set_threads
from runtime.results import with_provenance
from speculative.data.vocab import build_vocab_mapping
from speculative.offline.backend import OfflineTargetBackend
from speculative.parallel.build import build_dist_training
from speculative.parallel.config import DistTrainConfig


class RecipeConfig(StrictModel):
    offline_dir: str  # shards from `speculative prepare`
    out: str  # the result JSON
    vocab: list[int] = Field(default_factory=lambda: [4096, 8192, 16384, 32000], min_length=1)  # draft vocab sizes
    ttt: list[int] = Field(default_factory=lambda: [3, 4, 7], min_length=1)  # ttt_length values
    steps: int = Field(6, ge=0)  # timed optimizer steps per setting (0 = coverage only)
    threads: int | None = None


def vocab_coverage(backend: OfflineTargetBackend, sizes: list[int]) -> dict[int, float]:
    """Fraction of loss rows (the target at t predicts token t+1, counted when t+1 is a loss token) whose
    full-vocab argmax is inside the draft vocab of each size."""
    examples = backend.examples()
    argmaxes = []
    for i in range(backend.manifest["num_shards"]):
        t = backend._open(i)
        mask, arg, offsets = t.get_tensor("loss_mask"), t.get_tensor("target_argmax").long(), t.get_tensor("offsets")
        for j in range(len(offsets) - 1):
            s, e = int(offsets[j]), int(offsets[j + 1])
            argmaxes.append(arg[s:e - 1][mask[s + 1:e]])
    rows = torch.cat(argmaxes)
    vocab = backend.config.vocab_size
    return {n: float(build_vocab_mapping(examples, vocab, n)[1][rows].float().mean()) for n in sizes}


def step_throughput(offline_dir: str, ttt: int, vocab: int, steps: int, threads: int | None) -> dict[str, Any]:
    cfg = load_config(DistTrainConfig, None, [
        "target_kind=offline", f"offline_dir={offline_dir}", f"ttt_length={ttt}", f"data.draft_vocab_size={vocab}",
        "optim.grad_accum=1", "optim.warmup_steps=0", f"max_steps={steps + 1}", "tensorboard=false", "export=false",
        f"out_dir={tempfile.mkdtemp(prefix='spec-recipe-')}", "aux_norm_batches=2",
        *([f"threads={threads}"] if threads else [])])
    trainer = build_dist_training(cfg)
    trainer.train_step()  # warm-up
    tokens, t0 = 0, time.perf_counter()
    for _ in range(steps):
        tokens += trainer.train_step()["tokens"]
    dt = time.perf_counter() - t0
    return {"ttt": ttt, "vocab": vocab, "tokens": tokens, "seconds": dt, "tokens_per_s": tokens / dt}


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_cli(RecipeConfig, argv, description=__doc__, example="offline_dir=DIR out=recipe.json steps=0")
    set_threads(cfg.threads)
    backend = OfflineTargetBackend(cfg.offline_dir)
    result: dict[str, Any] = {"offline_dir": cfg.offline_dir, "load_average": os.getloadavg(),
                              "coverage": vocab_coverage(backend, cfg.vocab), "throughput": []}
    print(json.dumps(result["coverage"]))
    if cfg.steps:
        for ttt in cfg.ttt:
            for vocab in cfg.vocab:
                row = step_throughput(cfg.offline_dir, ttt, vocab, cfg.steps, cfg.threads)
                print(json.dumps(row))
                result["throughput"].append(row)
    result["load_average_end"] = os.getloadavg()
    atomic_write_json(Path(cfg.out), with_provenance(result, config=cfg))
    return 0
