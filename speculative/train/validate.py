"""Held-out validation of the draft: the TTT metrics (acc_k, simulated accept length) on examples that the
trainer never sees, so a learning curve tracks what decoding will measure rather than memorisation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from speculative.data.dataset import Batch, Example, collate
from speculative.target.backend import TargetBackend, TargetOutputs
from speculative.train.ttt import TTTResult


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
    `val_rows` = rows counted at step 0."""
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
        for k in range(ttt_length):
            hits[k] += res.acc[k] * res.counted[k]
            losses[k] += res.ploss[k] * res.counted[k]
            rows[k] += res.counted[k]
        accept_sum += res.accept_len * res.accept_rows
        accept_rows += res.accept_rows
    out = {f"val_acc_{k}": hits[k] / max(rows[k], 1) for k in range(ttt_length)}
    out |= {f"val_ploss_{k}": losses[k] / max(rows[k], 1) for k in range(ttt_length)}
    return out | {"val_accept_len": accept_sum / max(accept_rows, 1), "val_rows": rows[0]}
