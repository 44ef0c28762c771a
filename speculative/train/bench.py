"""`make bench-spec-train`: draft-training throughput and peak RSS, ours vs a naive reference path.

ours:  target head only on the draft-vocab rows (t2d), fused soft-CE from runtime.ops (auto impl).
naive: full-vocab target logits [B, T, V_target] then restricted, reference soft-CE (materialised logits).
Both: real SmolLM2 target, ttt_length 7, max_length 512, same batches, eager. Each variant runs in its
own subprocess (peak RSS is per process), back to back. Writes experiments/results/bench_spec_train.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

import torch

from runtime.checkpoint import atomic_write_json
from runtime.config import load_config
from runtime.paths import repo_root, results_dir
from runtime.results import with_provenance

CONFIG = "experiments/configs/speculative/smollm2_sharegpt.yaml"


def flops_per_token(cfg, target_params_no_embed: int, draft_trainable: int, draft_vocab: int, seq: int) -> dict:
    """Matmul FLOPs per token (2 per MAC); backward = 2x forward for the draft; attention scores included."""
    h, layers, ttt = cfg["hidden"], cfg["layers"], cfg["ttt"]
    target = 2 * target_params_no_embed + 2 * h * draft_vocab + layers * 4 * seq / 2 * h
    draft_step = 2 * draft_trainable + 4 * seq / 2 * h  # causal block 0 (+ a few diagonal keys)
    return {"target_fwd": target, "draft_fwd_bwd": 3 * ttt * draft_step, "total": target + 3 * ttt * draft_step}


def run_variant(variant: str, steps: int, overrides: list[str]) -> dict:
    from runtime.ops import current_impl, set_impl
    from speculative.target.backend import HFTargetBackend, TargetOutputs
    from speculative.train.build import build_training
    from speculative.train.config import TrainConfig
    from speculative.train.trainer import DraftTrainer

    cfg = load_config(TrainConfig, repo_root() / CONFIG,
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
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--variant", choices=["ours", "naive"], help="internal: run one variant and print JSON")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args(argv)
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.steps, args.overrides)))
        return 0
    results = {}
    for variant in ("ours", "naive"):
        proc = subprocess.run([sys.executable, "-m", "speculative.train.bench", "--variant", variant,
                               "--steps", str(args.steps), *args.overrides], capture_output=True, text=True,
                              cwd=repo_root())
        if proc.returncode:
            raise SystemExit(f"{variant} failed:\n{proc.stderr[-3000:]}")
        results[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
    results["speedup"] = results["ours"]["tokens_per_s"] / results["naive"]["tokens_per_s"]
    results["rss_ratio"] = results["ours"]["peak_rss_mib"] / results["naive"]["peak_rss_mib"]
    out = atomic_write_json(results_dir() / "bench_spec_train.json", with_provenance(results, config=vars(args)))
    print(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
