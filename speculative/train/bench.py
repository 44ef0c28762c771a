"""`make bench-speculative-train`: draft-training throughput and peak RSS, ours vs a naive reference path.

ours:  target head only on the draft-vocab rows (t2d), fused soft-CE from runtime.ops (auto impl).
naive: full-vocab target logits [B, T, V_target] then restricted, reference soft-CE (materialised logits).
Both: real SmolLM2 target, ttt_length 7, max_length 512, same batches, eager. Each variant runs in its
own subprocess (`python -m speculative bench-train variant=...`; peak RSS is per process), back to back.
Writes <results>/bench_speculative_train.json (runtime.paths.results_dir()).

    python -m speculative bench-train train_config=experiments/configs/speculative/smollm2_sharegpt.yaml steps=4
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

from runtime.checkpoint import atomic_write_json
from runtime.config import StrictModel, config_from_cli, load_config
from runtime.ops import current_impl, set_impl
from runtime.paths import repo_root, results_dir
from runtime.results import with_provenance
from speculative.target.backend import HFTargetBackend, TargetOutputs
from speculative.train.build import build_training
from speculative.train.config import DraftTrainConfig
from speculative.train.trainer import DraftTrainer


class BenchTrainConfig(StrictModel):
    train_config: str  # the DraftTrainConfig YAML both variants train with (real target), e.g. smollm2_sharegpt.yaml
    train_overrides: list[str] = []  # key=value overrides of that config, after the bench's own
    steps: int = Field(4, ge=1)  # timed optimizer steps per variant (after one warm-up step)
    variant: Literal["ours", "naive"] | None = None  # internal: run one variant in this process, print JSON


def flops_per_token(cfg, target_params_no_embed: int, draft_trainable: int, draft_vocab: int, seq: int) -> dict:
    """Matmul FLOPs per token (2 per MAC); backward = 2x forward for the draft; attention scores included."""
    h, layers, ttt = cfg["hidden"], cfg["layers"], cfg["ttt"]
    target = 2 * target_params_no_embed + 2 * h * draft_vocab + layers * 4 * seq / 2 * h
    draft_step = 2 * draft_trainable + 4 * seq / 2 * h  # causal block 0 (+ a few diagonal keys)
    return {"target_fwd": target, "draft_fwd_bwd": 3 * ttt * draft_step, "total": target + 3 * ttt * draft_step}


def run_variant(variant: str, steps: int, train_config: str, overrides: list[str]) -> dict:
    cfg = load_config(DraftTrainConfig, train_config,
                      ["data.max_length=512", "ttt_length=7", "optim.grad_accum=1", "tensorboard=false",
                       f"out_dir={tempfile.mkdtemp(prefix=f'bench-spec-{variant}-')}", "data.limit=200", *overrides])
    setup = build_training(cfg)
    if variant == "naive":
        set_impl("reference")

        class FullVocabTarget(HFTargetBackend):
            @torch.no_grad()
            def forward(self, input_ids, attention_mask, t2d):
                out = self.model(input_ids=input_ids, attention_mask=attention_mask.long(), output_hidden_states=True)
                hs = out.hidden_states
                full = out.logits.float()  # [B, T, V_target]
                probs = torch.softmax(full[..., t2d.to(full.device)], -1)
                return TargetOutputs(torch.cat([hs[k] for k in self.aux_layer_ids], -1), hs[-1], probs,
                                     full.argmax(-1))

        setup.target.__class__ = FullVocabTarget
    trainer = DraftTrainer(cfg, setup.target, setup.draft, setup.schedule, setup.val_examples)
    trainer.train_step()  # warm-up (allocator, first-call overheads)
    tokens, t0 = 0, time.perf_counter()
    for _ in range(steps):
        tokens += trainer.train_step()["tokens"]
    dt = time.perf_counter() - t0
    t_cfg = setup.target.config
    n_target = sum(p.numel() for n, p in setup.target.model.named_parameters() if "embed" not in n)
    draft_trainable = setup.report["draft_trainable_params"]
    flops = flops_per_token({"hidden": t_cfg.hidden_size, "layers": t_cfg.num_hidden_layers, "ttt": 7}, n_target,
                            draft_trainable, setup.draft.config.draft_vocab_size, 512)
    return {"variant": variant, "steps": steps, "tokens": tokens, "seconds": dt, "tokens_per_s": tokens / dt,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "soft_ce_impl": current_impl(), "threads": torch.get_num_threads(),
            "flops_per_token": flops, "achieved_gflops": flops["total"] * tokens / dt / 1e9}


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_cli(BenchTrainConfig, argv, description=__doc__, example="train_config=FILE steps=4")
    if cfg.variant:
        print(json.dumps(run_variant(cfg.variant, cfg.steps, cfg.train_config, cfg.train_overrides)))
        return 0
    results = {}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo_root()), os.environ.get("PYTHONPATH")]))}
    for variant in ("ours", "naive"):
        proc = subprocess.run([sys.executable, "-m", "speculative", "bench-train", f"variant={variant}",
                               f"steps={cfg.steps}", f"train_config={Path(cfg.train_config).resolve()}",
                               f"train_overrides={json.dumps(cfg.train_overrides)}"], capture_output=True, text=True,
                              env=env)
        if proc.returncode:
            raise SystemExit(f"{variant} failed:\n{proc.stderr[-3000:]}")
        results[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
    results["speedup"] = results["ours"]["tokens_per_s"] / results["naive"]["tokens_per_s"]
    results["rss_ratio"] = results["ours"]["peak_rss_mib"] / results["naive"]["peak_rss_mib"]
    out = atomic_write_json(results_dir() / "bench_speculative_train.json", with_provenance(results, config=cfg))
    print(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0
