"""Value-model distillation: regress V at every response prefix to the response's final reward (MSE).

Head-only training (the default: frozen shared backbone) computes the backbone features once and
then trains the head on them; with LoRA the backbone runs every step. Resumable through
runtime.checkpoint (head/LoRA weights, optimizer, RNG, step), metrics to JSONL + TensorBoard.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from runtime.checkpoint import CheckpointManager, rng_state, set_rng_state
from runtime.device import seed_everything
from runtime.logging import MetricsWriter, get_logger, progress
from sparse_align.config import TrainConfig
from sparse_align.value.model import ValueModel

log = get_logger("sparse_align.train")


@torch.inference_mode()
def prefix_features(value_model: ValueModel, rows: list[dict[str, Any]], batch_rows: int = 16
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(features [N, H], targets [N], row index [N]) for every response token of every row.

    Rows are right-padded into batches of `batch_rows`: causal attention means a real token never
    sees the padding after it, so the features are the batch-1 ones (up to float rounding)."""
    feats, targets, owner = [], [], []
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["prompt_ids"]) + len(rows[i]["response_ids"]))
    per_row: dict[int, torch.Tensor] = {}
    bar = progress(total=len(rows), desc="value features")
    for b in range(0, len(order), batch_rows):
        chunk = order[b:b + batch_rows]
        seqs = [rows[i]["prompt_ids"] + rows[i]["response_ids"] for i in chunk]
        width = max(len(s) for s in seqs)
        ids = torch.tensor([s + [s[-1]] * (width - len(s)) for s in seqs], device=value_model.head_device)
        hidden = value_model.backbone(ids, output_hidden_states=True, logits_to_keep=1).hidden_states[-1]
        for k, i in enumerate(chunk):
            n_prompt, n = len(rows[i]["prompt_ids"]), len(seqs[k])
            per_row[i] = hidden[k, n_prompt:n].float().cpu()  # position of y_t = value of the prefix ending at y_t
        bar.update(len(chunk))
    bar.close()
    for i, row in enumerate(rows):
        resp = per_row[i]
        feats.append(resp)
        targets.append(torch.full((len(resp),), float(row["reward"])))
        owner.append(torch.full((len(resp),), i))
    return torch.cat(feats), torch.cat(targets), torch.cat(owner)


def split_rows(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, int(n * val_fraction)) if n > 1 else 0
    return order[n_val:], order[:n_val]


def train_value_head(value_model: ValueModel, rows: list[dict[str, Any]], cfg: TrainConfig, run_dir: str | Path,
                     *, val_fraction: float = 0.1) -> dict[str, float]:
    """Train the head on precomputed features; returns final train/val MSE and val correlation."""
    if value_model.cfg.lora_rank > 0:
        raise ValueError("LoRA value models train with train_value_lora (the backbone changes every step)")
    if len(rows) < 2:
        raise ValueError(f"need at least 2 distillation responses, got {len(rows)}")
    run_dir = Path(run_dir)
    seed_everything(cfg.seed)
    feats, targets, owner = prefix_features(value_model, rows)
    train_rows, val_rows = split_rows(len(rows), val_fraction, cfg.seed)
    is_val = torch.isin(owner, torch.tensor(val_rows))
    xtr, ytr, xva, yva = feats[~is_val], targets[~is_val], feats[is_val], targets[is_val]
    head = value_model.head
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(xtr) / cfg.batch_tokens)
    total = cfg.epochs * steps_per_epoch
    ckpt = CheckpointManager(run_dir / "checkpoints", keep=2)
    step = 0
    loaded = ckpt.load()
    if loaded is not None:
        head.load_state_dict(loaded.tensors["head"])
        opt.load_state_dict(loaded.state["optimizer"])
        set_rng_state(loaded.state["rng"])
        step = loaded.step
        log.info("resumed value-head training at step %d/%d", step, total)
    dev = value_model.head_device
    with MetricsWriter(run_dir / "train_metrics.jsonl", tensorboard_dir=run_dir / "tb") as metrics:
        bar = progress(total=total, initial=step, desc="value head")
        while step < total:
            epoch = step // steps_per_epoch
            order = torch.randperm(len(xtr), generator=torch.Generator().manual_seed(cfg.seed * 7919 + epoch))
            b = step % steps_per_epoch
            idx = order[b * cfg.batch_tokens:(b + 1) * cfg.batch_tokens]
            head.train()
            loss = torch.nn.functional.mse_loss(head(xtr[idx].to(dev)).float(), ytr[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            bar.update(1)
            if step % cfg.checkpoint_every == 0 or step == total:
                val = _evaluate(head, xva, yva, dev)
                metrics.log(step, train_mse=float(loss.detach()), **val)
                ckpt.save(step, tensors={"head": head.state_dict()},
                          state={"optimizer": opt.state_dict(), "rng": rng_state()})
        bar.close()
    head.eval()
    final = {"train_mse": _evaluate(head, xtr, ytr, dev)["val_mse"], **_evaluate(head, xva, yva, dev),
             "train_tokens": len(xtr), "val_tokens": len(xva), "steps": total}
    return final


@torch.inference_mode()
def _evaluate(head: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, dev: torch.device) -> dict[str, float]:
    if len(x) == 0:
        return {"val_mse": float("nan"), "val_corr": float("nan")}
    was_training = head.training
    head.eval()
    pred = head(x.to(dev)).float().cpu()
    head.train(was_training)
    corr = torch.corrcoef(torch.stack([pred, y]))[0, 1] if len(x) > 1 and y.std() > 0 else torch.tensor(float("nan"))
    return {"val_mse": float(torch.mean((pred - y) ** 2)), "val_corr": float(corr)}


def train_value_lora(value_model: ValueModel, rows: list[dict[str, Any]], cfg: TrainConfig,
                     run_dir: str | Path) -> dict[str, float]:
    """LoRA + head: one response per step through the backbone (slow on CPU; for GPU machines)."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    run_dir = Path(run_dir)
    seed_everything(cfg.seed)
    params = [p for p in value_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.epochs * len(rows)
    ckpt = CheckpointManager(run_dir / "checkpoints", keep=2)
    start = 0
    loaded = ckpt.load()
    if loaded is not None:
        value_model.head.load_state_dict(loaded.tensors["head"])
        set_peft_model_state_dict(value_model.backbone, loaded.tensors["lora"])
        opt.load_state_dict(loaded.state["optimizer"])
        set_rng_state(loaded.state["rng"])
        start = loaded.step
    dev = value_model.head_device
    losses: list[float] = []
    with MetricsWriter(run_dir / "train_metrics.jsonl") as metrics:
        for step in progress(range(start, total), desc="value lora", initial=start, total=total):
            row = rows[step % len(rows)]
            ids = torch.tensor([row["prompt_ids"] + row["response_ids"]], device=dev)
            value_model.train()
            pred = value_model(ids)[0, len(row["prompt_ids"]):].float()
            loss = torch.nn.functional.mse_loss(pred, torch.full_like(pred, float(row["reward"])))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == total:
                metrics.log(step + 1, train_mse=sum(losses[-50:]) / len(losses[-50:]))
                ckpt.save(step + 1, tensors={"head": value_model.head.state_dict(),
                                             "lora": get_peft_model_state_dict(value_model.backbone)},
                          state={"optimizer": opt.state_dict(), "rng": rng_state()})
    value_model.eval()
    return {"train_mse": sum(losses[-50:]) / max(len(losses[-50:]), 1), "steps": total}
