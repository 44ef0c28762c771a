"""Draft vocabulary: the N most frequent loss-masked target tokens, as `d2t` offsets and a `t2d` mask.

Ordering is deterministic (count desc, then id asc); the chosen ids are stored ascending so that
draft id i <-> i-th smallest chosen target id. With fewer distinct tokens than N the remainder is
filled with the smallest unseen ids, so the draft vocab size is always the configured one. Results
are cached under `cache_dir("speculative/vocab")` keyed by a hash of the data, tokenizer and N.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from safetensors.torch import load_file

from runtime.checkpoint import atomic_save_tensors
from runtime.paths import cache_dir
from speculative.data.chat import tokenizer_fingerprint
from speculative.data.dataset import Example


def build_vocab_mapping(examples: list[Example], target_vocab: int, draft_vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(d2t int64 [N], t2d bool [V]) from loss-masked token frequencies."""
    n = min(draft_vocab, target_vocab)
    counts = torch.zeros(target_vocab, dtype=torch.int64)
    for e in examples:
        counts += torch.bincount(e.input_ids[e.loss_mask], minlength=target_vocab)
    # stable sort on -count keeps ascending id order among ties
    order = torch.sort(-counts, stable=True).indices
    seen = order[counts[order] > 0][:n]
    if len(seen) < n:
        unseen = torch.nonzero(counts == 0)[:, 0][: n - len(seen)]
        seen = torch.cat([seen, unseen])
    chosen = torch.sort(seen).values
    t2d = torch.zeros(target_vocab, dtype=torch.bool)
    t2d[chosen] = True
    d2t = chosen - torch.arange(n)
    return d2t, t2d


def data_fingerprint(examples: list[Example]) -> str:
    h = hashlib.sha256()
    for e in examples:
        h.update(e.input_ids.numpy().tobytes())
        h.update(e.loss_mask.numpy().tobytes())
    return h.hexdigest()[:16]


def cached_vocab_mapping(examples: list[Example], tokenizer: Any, target_vocab: int,
                         draft_vocab: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """`build_vocab_mapping` through the content-hash cache; returns (d2t, t2d, cache key)."""
    key = f"{data_fingerprint(examples)}-{tokenizer_fingerprint(tokenizer)}-{target_vocab}-{draft_vocab}"
    path = cache_dir("speculative/vocab") / f"{key}.safetensors"
    if path.is_file():
        t = load_file(str(path))
        return t["d2t"], t["t2d"], key
    d2t, t2d = build_vocab_mapping(examples, target_vocab, draft_vocab)
    atomic_save_tensors(path, {"d2t": d2t, "t2d": t2d})
    return d2t, t2d, key
