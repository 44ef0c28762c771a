"""Value-model distillation on a frozen backbone (the head only; LoRA below for GPU machines).

Loss = mse_weight * MSE(V(prefix), final reward) over every response prefix
     + rank_weight * ranking loss over each labelled position's K candidates (value/candidates.py).
Validation holds out whole prompts (value/split.py), so no prompt's responses sit on both sides.
Every `checkpoint_every` steps: held-out pairwise accuracy over candidate pairs (MSE when the data has
no candidates); the best head so far is kept and restored at the end (early stopping, `patience`).
Resumable through runtime.checkpoint (head, optimizer, RNG, step, best head, patience counter).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from runtime.checkpoint import CheckpointManager, rng_state, set_rng_state
from runtime.device import seed_everything
from runtime.logging import MetricsWriter, get_logger, progress
from sparse_align.config import ValueTrainConfig
from sparse_align.value.evaluate import Split, evaluate_head
from sparse_align.value.features import packed_features
from sparse_align.value.losses import listwise_loss, pairwise_loss
from sparse_align.value.model import ValueModel
from sparse_align.value.split import split_by_prompt
from sparse_align.value.train_lora import train_value_lora

__all__ = ["train_value_head", "train_value_lora"]

log = get_logger("sparse_align.train")


def _rank_loss(head: torch.nn.Module, cand: torch.Tensor, target: torch.Tensor, cfg: ValueTrainConfig) -> torch.Tensor:
    values = head(cand).float()  # [N, K]
    if cfg.rank_loss == "listwise":
        return listwise_loss(values, target, cfg.rank_temperature)
    return pairwise_loss(values, target, cfg.tie_eps)


def _better(new: dict[str, float], best: dict[str, float] | None) -> bool:
    """Higher held-out pairwise accuracy wins; without candidate pairs, lower held-out MSE."""
    if best is None:
        return True
    if not math.isnan(new.get("val_pairwise_acc", float("nan"))):
        return new["val_pairwise_acc"] > best["val_pairwise_acc"]
    return new["val_mse"] < best["val_mse"]


def train_value_head(value_model: ValueModel, rows: list[dict[str, Any]], cfg: ValueTrainConfig,
                     run_dir: str | Path) -> dict[str, Any]:
    """Train the head on precomputed features; returns the restored best head's metrics."""
    if value_model.cfg.lora_rank > 0:
        raise ValueError("LoRA value models train with train_value_lora (the backbone changes every step)")
    if len(rows) < 2:
        raise ValueError(f"need at least 2 distillation responses, got {len(rows)}")
    run_dir = Path(run_dir)
    seed_everything(cfg.seed)
    feats = packed_features(value_model, rows)
    train_rows, val_rows = split_by_prompt(rows, cfg.val_fraction, cfg.seed)
    tr, va = Split.of(feats, train_rows), Split.of(feats, val_rows)
    use_rank = cfg.rank_loss != "none" and cfg.rank_weight > 0 and len(tr.cand) > 0
    head, dev = value_model.head, value_model.head_device
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    tok_steps = math.ceil(len(tr.prefix) / cfg.batch_tokens)
    pos_steps = math.ceil(len(tr.cand) / cfg.rank_batch) if use_rank else 0
    steps_per_epoch = max(tok_steps, pos_steps, 1)
    total = cfg.epochs * steps_per_epoch
    ckpt = CheckpointManager(run_dir / "checkpoints", keep=2)
    step, best, best_state, bad, stopped = 0, None, None, 0, False
    loaded = ckpt.load()
    if loaded is not None:
        head.load_state_dict(loaded.tensors["head"])
        opt.load_state_dict(loaded.state["optimizer"])
        set_rng_state(loaded.state["rng"])
        step, best, bad, stopped = loaded.step, loaded.state["best"], loaded.state["bad"], loaded.state["stopped"]
        best_state = loaded.tensors.get("best_head")
        log.info("resumed value-head training at step %d/%d", step, total)
    with MetricsWriter(run_dir / "train_metrics.jsonl", tensorboard_dir=run_dir / "tb") as metrics:
        bar = progress(total=total, initial=step, desc="value head")
        while step < total and not stopped:
            epoch, b = divmod(step, steps_per_epoch)
            g = torch.Generator().manual_seed(cfg.seed * 7919 + epoch)
            head.train()
            loss = torch.zeros((), device=dev)
            if cfg.mse_weight > 0 and len(tr.prefix):
                idx = torch.randperm(len(tr.prefix), generator=g)[(b % tok_steps) * cfg.batch_tokens:][:cfg.batch_tokens]
                loss = loss + cfg.mse_weight * torch.nn.functional.mse_loss(head(tr.prefix[idx].to(dev)).float(),
                                                                             tr.reward[idx].to(dev))
            if use_rank:
                idx = torch.randperm(len(tr.cand), generator=g)[(b % pos_steps) * cfg.rank_batch:][:cfg.rank_batch]
                loss = loss + cfg.rank_weight * _rank_loss(head, tr.cand[idx].to(dev), tr.cand_reward[idx].to(dev), cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            bar.update(1)
            if step % cfg.checkpoint_every == 0 or step == total:
                val = {**evaluate_head(head, va, cfg, dev), "step": step}
                if _better(val, best):
                    best, best_state, bad = val, {k: v.detach().clone() for k, v in head.state_dict().items()}, 0
                else:
                    bad += 1
                stopped = cfg.patience > 0 and bad >= cfg.patience
                metrics.log(step, train_loss=float(loss.detach()), best_step=best["step"],
                            **{k: v for k, v in val.items() if isinstance(v, float)})
                ckpt.save(step, tensors={"head": head.state_dict(), "best_head": best_state},
                          state={"optimizer": opt.state_dict(), "rng": rng_state(), "best": best, "bad": bad,
                                 "stopped": stopped})
        bar.close()
    if best_state is not None:
        head.load_state_dict(best_state)  # early stopping: the best checkpoint, not the last
    head.eval()
    out = {f"train_{k[4:]}": v for k, v in evaluate_head(head, tr, cfg, dev).items() if k.startswith("val_")}
    out.update(evaluate_head(head, va, cfg, dev))
    out.update({"train_tokens": len(tr.prefix), "val_tokens": len(va.prefix), "train_positions": len(tr.cand),
                "val_positions": len(va.cand), "train_prompts": len({rows[i].get("prompt_index", i) for i in train_rows}),
                "val_prompts": len({rows[i].get("prompt_index", i) for i in val_rows}), "steps": step,
                "best_step": (best or {}).get("step", step), "stopped_early": stopped})
    return out
