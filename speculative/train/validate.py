"""Held-out validation of the draft: the TTT metrics (acc_k, simulated accept length) on examples that the
trainer never sees, so a learning curve tracks what decoding will measure rather than memorisation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from speculative.data.dataset import Batch, Example, collate
from speculative.target.backend import TargetBackend, TargetOutputs
from speculative.train.ttt import TTTResult, shift_left

# bands of the target's confidence (its top probability on the draft vocab at the predicted row)
CONF_EDGES = (0.0, 0.3, 0.5, 0.7, 0.9, 1.0)


class ConfidenceBands:
    """Held-out acc_0 by how sure the target is of its next token: where a draft misses, and how much of the
    text is in bands that no draft predicts well (a low-confidence argmax turns on small logit gaps)."""

    def __init__(self, edges: tuple[float, ...] = CONF_EDGES):
        self.bounds = tuple(edges)
        self.edges = torch.tensor(edges)
        self.rows = torch.zeros(len(edges) - 1, dtype=torch.long)
        self.hits = torch.zeros(len(edges) - 1, dtype=torch.long)

    def add(self, batch: Batch, tout: TargetOutputs, correct0: torch.Tensor) -> None:
        # step-0 row t is scored against the target at row t+1 and counted where the loss mask holds at t+2
        # (speculative.train.ttt.ttt_unroll)
        conf = shift_left(tout.target_probs.max(-1).values.float(), 1).cpu()
        valid = shift_left(batch.attention_mask & batch.loss_mask, 2, False).cpu()
        band = torch.bucketize(conf[valid], self.edges[1:-1], right=True)
        self.rows += torch.bincount(band, minlength=len(self.rows))
        self.hits += torch.bincount(band[correct0.cpu()[valid]], minlength=len(self.rows))

    def summary(self) -> list[dict[str, float]]:
        total = max(int(self.rows.sum()), 1)
        return [{"conf_from": self.bounds[i], "conf_to": self.bounds[i + 1],
                 "share": int(self.rows[i]) / total, "acc_0": int(self.hits[i]) / max(int(self.rows[i]), 1),
                 "rows": int(self.rows[i])} for i in range(len(self.rows))]


def split_holdout(examples: list[Example], n: int) -> tuple[list[Example], list[Example]]:
    """(train, held out): the last `n` examples (whole conversations, in data order) are held out, less any
    whose tokens also occur as a training example (ShareGPT repeats short prompts): those stay trained on."""
    if n <= 0:
        return examples, []
    if n >= len(examples):
        raise ValueError(f"val.examples={n} leaves no training examples (only {len(examples)} prepared)")
    train = examples[:-n]
    seen = {tuple(e.input_ids.tolist()) for e in train}
    return train, [e for e in examples[-n:] if tuple(e.input_ids.tolist()) not in seen]


@torch.no_grad()
def validate(unroll: Callable[[Batch, TargetOutputs], TTTResult], target: TargetBackend, t2d: torch.Tensor,
             examples: list[Example], *, ttt_length: int, batch_size: int = 4, pad_id: int = 0,
             device: Any = None) -> dict[str, float]:
    """Row-weighted acc_k, ploss_k and accept length over `examples`; `unroll` is the trainer's TTT forward
    of one micro-batch (so a sharded draft is gathered as in training). Keys are prefixed `val_`;
    `val_rows` = rows counted at step 0; `val_bands` = ConfidenceBands.summary() (a list, not a scalar)."""
    bands = ConfidenceBands()
    hits = [0.0] * ttt_length
    losses = [0.0] * ttt_length
    rows = [0] * ttt_length
    accept_sum, accept_rows = 0.0, 0
    for i in range(0, len(examples), batch_size):
        batch = collate(examples[i:i + batch_size], pad_id)
        if device is not None:
            batch = batch.to(device)
        tout = target.forward(batch.input_ids, batch.attention_mask, t2d)
        res = unroll(batch, tout)
        bands.add(batch, tout, res.correct[0])
        for k in range(ttt_length):
            hits[k] += res.acc[k] * res.counted[k]
            losses[k] += res.ploss[k] * res.counted[k]
            rows[k] += res.counted[k]
        accept_sum += res.accept_len * res.accept_rows
        accept_rows += res.accept_rows
    out = {f"val_acc_{k}": hits[k] / max(rows[k], 1) for k in range(ttt_length)}
    out |= {f"val_ploss_{k}": losses[k] / max(rows[k], 1) for k in range(ttt_length)}
    return out | {"val_accept_len": accept_sum / max(accept_rows, 1), "val_rows": rows[0],
                  "val_bands": bands.summary()}
