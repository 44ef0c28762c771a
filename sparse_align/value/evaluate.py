"""Held-out metrics of a value head: prefix MSE / correlation to the final reward, and pairwise accuracy
over candidate pairs (the teacher's order of prefix + candidate), overall and per top-K entropy band."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from sparse_align.config import ValueTrainConfig
from sparse_align.value.features import Features
from sparse_align.value.losses import banded_accuracy


@dataclass
class Split:
    prefix: torch.Tensor
    reward: torch.Tensor
    cand: torch.Tensor
    cand_reward: torch.Tensor
    entropy: torch.Tensor  # top-K entropy of each candidate position (the banding score)

    @classmethod
    def of(cls, f: Features, rows: list[int]) -> Split:
        sel = torch.tensor(rows, dtype=torch.long)
        tok, pos = torch.isin(f.tok_row, sel), torch.isin(f.pos_row, sel)
        ent = f.pos_score.get("topk_entropy", torch.zeros(len(f.pos_row)))
        return cls(f.prefix[tok], f.reward[tok], f.cand[pos] if len(f.cand) else f.cand,
                   f.cand_reward[pos] if len(f.cand) else f.cand_reward, ent[pos] if len(ent) else ent)


@torch.inference_mode()
def evaluate_head(head: torch.nn.Module, s: Split, cfg: ValueTrainConfig, dev: torch.device) -> dict[str, Any]:
    was_training = head.training
    head.eval()
    out: dict[str, Any] = {"val_mse": float("nan"), "val_corr": float("nan"), "val_pairwise_acc": float("nan")}
    if len(s.prefix):
        pred = head(s.prefix.to(dev)).float().cpu()
        out["val_mse"] = float(torch.mean((pred - s.reward) ** 2))
        if len(pred) > 1 and s.reward.std() > 0 and pred.std() > 0:
            out["val_corr"] = float(torch.corrcoef(torch.stack([pred, s.reward]))[0, 1])
    if len(s.cand):
        values = head(s.cand.to(dev)).float().cpu()
        bands = banded_accuracy(values, s.cand_reward, s.entropy, cfg.entropy_bands, cfg.tie_eps)
        out["val_pairwise_acc"] = bands["all"]["acc"]
        out["val_pairwise_by_band"] = bands
    head.train(was_training)
    return out
