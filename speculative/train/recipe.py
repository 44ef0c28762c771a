"""Measure the recipe knobs on prepared offline shards instead of assuming them.

    python -m speculative.train.recipe --offline-dir DIR --out experiments/results/spec_recipe.json \
        [--vocab 4096,8192,16384,32000] [--ttt 3,4,7] [--steps 6]

- coverage: the share of loss rows whose full-vocab target argmax lies in the top-N draft vocab (the
  ceiling of acc_0 for that N; the draft vocab is built as training builds it, from the same data);
- throughput: target tokens/s of real optimizer steps (offline target, batch 1) for each (ttt, vocab),
  after one warm-up step; the draft is untrained, which does not change the cost.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from runtime.checkpoint import atomic_write_json
from runtime.device import set_threads
from speculative.data.vocab import build_vocab_mapping
from speculative.offline.backend import OfflineTargetBackend


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
    from runtime.config import load_config
    from speculative.parallel.build import build_dist_training
    from speculative.parallel.config import DistTrainConfig

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
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--offline-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", default="4096,8192,16384,32000")
    ap.add_argument("--ttt", default="3,4,7")
    ap.add_argument("--steps", type=int, default=6, help="timed optimizer steps per setting (0 = coverage only)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    set_threads(args.threads)
    sizes = [int(v) for v in args.vocab.split(",")]
    backend = OfflineTargetBackend(args.offline_dir)
    result: dict[str, Any] = {"offline_dir": args.offline_dir, "load_average": os.getloadavg(),
                              "coverage": vocab_coverage(backend, sizes), "throughput": []}
    print(json.dumps(result["coverage"]))
    if args.steps:
        for ttt in [int(k) for k in args.ttt.split(",")]:
            for vocab in sizes:
                row = step_throughput(args.offline_dir, ttt, vocab, args.steps, args.threads)
                print(json.dumps(row))
                result["throughput"].append(row)
    result["load_average_end"] = os.getloadavg()
    atomic_write_json(Path(args.out), result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
