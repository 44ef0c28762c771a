"""LoRA + head distillation: the backbone changes every step, so no precomputed features; one response
per step through the backbone (slow on CPU; for GPU machines). MSE of every prefix to the final reward."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from runtime.checkpoint import CheckpointManager, rng_state, set_rng_state
from runtime.device import seed_everything
from runtime.logging import MetricsWriter, progress
from sparse_align.config import ValueTrainConfig
from sparse_align.value.model import ValueModel


def train_value_lora(value_model: ValueModel, rows: list[dict[str, Any]], cfg: ValueTrainConfig,
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
