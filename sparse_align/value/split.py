"""Train/validation split by PROMPT: every response of a prompt lands on the same side, so held-out
metrics measure generalisation to new prompts, not to new samples of a seen prompt."""

from __future__ import annotations

from typing import Any

import torch


def split_by_prompt(rows: list[dict[str, Any]], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train row indices, val row indices); rows without `prompt_index` are their own group."""
    groups: dict[Any, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(row.get("prompt_index", ("row", i)), []).append(i)
    keys = list(groups)
    order = torch.randperm(len(keys), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, round(len(keys) * val_fraction)) if len(keys) > 1 and val_fraction > 0 else 0
    val_keys = {keys[j] for j in order[:n_val]}
    train = [i for k in keys if k not in val_keys for i in groups[k]]
    val = [i for k in keys if k in val_keys for i in groups[k]]
    return sorted(train), sorted(val)
