"""Tokenized training examples and padded batches, in a fixed order that a checkpoint can resume."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from runtime.checkpoint import atomic_save_tensors
from runtime.paths import cache_dir
from speculative.data.chat import RenderError, render_conversation, tokenizer_fingerprint
from speculative.data.records import SkipCounter


@dataclass
class Example:
    input_ids: torch.Tensor  # [T] int64
    loss_mask: torch.Tensor  # [T] bool


@dataclass
class Batch:
    input_ids: torch.Tensor  # [B, T]
    attention_mask: torch.Tensor  # [B, T] bool (right padding)
    loss_mask: torch.Tensor  # [B, T] bool

    def to(self, device: Any) -> Batch:
        return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.loss_mask.to(device))

    @property
    def num_tokens(self) -> int:
        return int(self.attention_mask.sum())


def tokenize_conversations(tokenizer: Any, conversations: list[list[dict[str, str]]], *, max_length: int,
                           last_turn_only: bool = False, min_loss_tokens: int = 2,
                           skips: SkipCounter | None = None) -> list[Example]:
    """Render + mask each conversation; unrenderable or loss-free ones are counted in `skips`."""
    skips = skips if skips is not None else SkipCounter()
    out = []
    for msgs in conversations:
        try:
            r = render_conversation(tokenizer, msgs, max_length=max_length, last_turn_only=last_turn_only)
        except RenderError:
            skips.skip("render_failed")
            continue
        except Exception:  # noqa: BLE001 - a template raising on odd input (e.g. role order) is a bad record
            skips.skip("template_error")
            continue
        if int(r.loss_mask.sum()) < min_loss_tokens:
            skips.skip("no_loss_tokens_after_truncation")
            continue
        out.append(Example(r.input_ids, r.loss_mask))
    return out


def cached_tokenize(tokenizer: Any, conversations: list[list[dict[str, str]]], *, max_length: int,
                    last_turn_only: bool = False, skips: SkipCounter | None = None) -> list[Example]:
    """`tokenize_conversations` through a cache keyed by the conversations, tokenizer and options.

    Rendering thousands of long ShareGPT conversations takes minutes on a busy CPU; a resumed or
    repeated run reuses the result. Skip counts are cached with it.
    """
    skips = skips if skips is not None else SkipCounter()
    blob = json.dumps([conversations, max_length, last_turn_only], ensure_ascii=False).encode("utf-8", "replace")
    key = hashlib.sha256(blob).hexdigest()[:16] + "-" + tokenizer_fingerprint(tokenizer)
    path = cache_dir("speculative/tokenized") / f"{key}.safetensors"
    if path.is_file():
        with safe_open(str(path), "pt") as fh:
            for reason, n in json.loads(fh.metadata()["skips"]).items():
                skips[reason] += n
        t = load_file(str(path))
        ids, mask = t["input_ids"].split(t["lengths"].tolist()), t["loss_mask"].split(t["lengths"].tolist())
        return [Example(i, m) for i, m in zip(ids, mask)]
    before = SkipCounter(skips)
    examples = tokenize_conversations(tokenizer, conversations, max_length=max_length,
                                      last_turn_only=last_turn_only, skips=skips)
    if examples:
        new_skips = {k: v - before.get(k, 0) for k, v in skips.items() if v - before.get(k, 0)}
        atomic_save_tensors(path, {"input_ids": torch.cat([e.input_ids for e in examples]),
                                   "loss_mask": torch.cat([e.loss_mask for e in examples]),
                                   "lengths": torch.tensor([len(e.input_ids) for e in examples])},
                            metadata={"skips": json.dumps(new_skips)})
    return examples


def collate(examples: list[Example], pad_id: int = 0, pad_multiple: int = 1) -> Batch:
    """Right-pad to the longest example, rounded up to `pad_multiple` positions."""
    t = max(len(e.input_ids) for e in examples)
    t = -(-t // pad_multiple) * pad_multiple
    ids = torch.full((len(examples), t), pad_id, dtype=torch.int64)
    att = torch.zeros((len(examples), t), dtype=torch.bool)
    loss = torch.zeros((len(examples), t), dtype=torch.bool)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n], att[i, :n], loss[i, :n] = e.input_ids, True, e.loss_mask
    return Batch(ids, att, loss)


class BatchSchedule:
    """Deterministic batches: epoch e uses permutation(seed + e); position = batches consumed so far.

    The checkpoint stores only `position`, so a resumed run replays exactly the same batches.
    """

    def __init__(self, examples: list[Example], batch_size: int, seed: int, pad_id: int = 0, pad_multiple: int = 1):
        if not examples:
            raise ValueError("no training examples (all records were skipped?)")
        if pad_multiple < 1:
            raise ValueError(f"pad_multiple must be >= 1, got {pad_multiple}")
        self.examples, self.batch_size, self.seed, self.pad_id = examples, batch_size, seed, pad_id
        self.pad_multiple = pad_multiple
        self.batches_per_epoch = max(1, len(examples) // batch_size)

    def batch(self, position: int) -> Batch:
        epoch, index = divmod(position, self.batches_per_epoch)
        gen = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(len(self.examples), generator=gen)
        chosen = order[index * self.batch_size:(index + 1) * self.batch_size]
        return collate([self.examples[int(i)] for i in chosen], self.pad_id, self.pad_multiple)
