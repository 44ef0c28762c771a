"""Run the target once over the dataset and write hidden-state shards; resumable and hash-checked.

Resume rule: shards are written in order, each atomically, and entered into the manifest (with its
sha256) only after its file is complete. On restart every recorded shard is re-hashed: intact ones are
kept, missing/corrupted/truncated ones are recomputed, so a killed run continues at the first
incomplete shard and a damaged file is never silently used.

Growing the data (more self-distilled rows appended to the JSONL) reuses the shards whose sequences are
unchanged: each shard records the fingerprint of its own sequences, and only the target/storage settings
must match the directory's. A shard whose sequences changed is rewritten; shards past the new end are dropped.

    python -m speculative prepare --config experiments/configs/speculative/offline_smollm2.yaml [key=value ...]
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from runtime.assets import load_tokenizer
from runtime.assets.models import model_dir
from runtime.config import config_from_cli
from runtime.device import parse_dtype, pick_device, seed_everything, set_threads
from runtime.logging import get_logger, progress
from speculative.data.dataset import Example, collate, tokenize_conversations
from speculative.data.records import SkipCounter, load_conversations
from speculative.data.vocab import data_fingerprint
from speculative.offline.backend import stored_tokenizer_info
from speculative.offline.config import HiddenStatesConfig
from speculative.offline.shards import (
    FORMAT_VERSION,
    bytes_per_token,
    pack_shard,
    read_manifest,
    shard_is_intact,
    write_manifest,
    write_shard,
)
from speculative.target.backend import HFTargetBackend, TargetBackend

log = get_logger("speculative.offline")


def load_examples(cfg: HiddenStatesConfig, tokenizer: Any) -> tuple[list[Example], SkipCounter]:
    """The training examples, tokenized exactly as `speculative.train` does (same order)."""
    convs, skips = load_conversations(cfg.data.source, limit=cfg.data.limit)
    examples = tokenize_conversations(tokenizer, convs, max_length=cfg.data.max_length,
                                      last_turn_only=cfg.data.last_turn_only, skips=skips)
    if not examples:
        raise ValueError(f"no usable examples in '{cfg.data.source}' (skipped: {dict(skips)})")
    return examples, skips


@torch.no_grad()
def target_states(target: TargetBackend, examples: list[Example], batch_size: int) -> list[dict[str, torch.Tensor]]:
    """Per-sequence aux/last hidden states (padding stripped), on CPU."""
    no_vocab = torch.zeros(target.config.vocab_size, dtype=torch.bool)  # empty draft vocab: skip the head
    out = []
    for i in range(0, len(examples), batch_size):
        chunk = examples[i:i + batch_size]
        batch = collate(chunk)
        device = target.embedding_weight().device
        tout = target.forward(batch.input_ids.to(device), batch.attention_mask.to(device), no_vocab.to(device))
        for b, e in enumerate(chunk):
            n = len(e.input_ids)
            out.append({"input_ids": e.input_ids, "loss_mask": e.loss_mask,
                        "aux_hidden": tout.aux_hidden[b, :n].cpu(), "last_hidden": tout.last_hidden[b, :n].cpu(),
                        "target_argmax": tout.target_argmax[b, :n].cpu()})
    return out


def _fingerprint(cfg: HiddenStatesConfig, examples: list[Example], target_dir: Path, aux_ids: list[int]) -> dict[str, Any]:
    return {"data": data_fingerprint(examples), "target_dir": str(target_dir.resolve()), "aux_layer_ids": aux_ids,
            "storage_dtype": cfg.storage_dtype, "shard_size": cfg.shard_size, "target_dtype": cfg.target.dtype}


def _settings(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """What makes stored states comparable: everything but the data (which is checked per shard)."""
    return {k: v for k, v in fingerprint.items() if k != "data"}


def _seq_fingerprint(examples: list[Example]) -> str:
    return data_fingerprint([Example(e.input_ids.long(), e.loss_mask.bool()) for e in examples])


def _stored_fingerprint(directory: Path, entry: dict[str, Any]) -> str:
    """A shard's sequence fingerprint: recorded, or (shards written before it was recorded) read back."""
    if "data" in entry:
        return entry["data"]
    with safe_open(str(directory / entry["file"]), "pt") as t:  # the ids only, not the hidden states
        ids, mask, off = (t.get_tensor(k) for k in ("input_ids", "loss_mask", "offsets"))
    return _seq_fingerprint([Example(ids[off[j]:off[j + 1]], mask[off[j]:off[j + 1]]) for j in range(len(off) - 1)])


def prepare_hidden_states(cfg: HiddenStatesConfig, *, target: TargetBackend | None = None,
                          on_shard: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Write (or complete) the shards under `cfg.out_dir`; returns the run report."""
    set_threads(cfg.threads)
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    out = Path(cfg.out_dir)
    tdir = model_dir(cfg.target.model)
    tokenizer = load_tokenizer(cfg.target.model)
    examples, skips = load_examples(cfg, tokenizer)
    if target is None:
        target = HFTargetBackend.from_asset(cfg.target.model, aux_layer_ids=cfg.target.aux_layer_ids, device=device,
                                            dtype=parse_dtype(cfg.target.dtype, device))
    hidden = target.config.hidden_size
    fingerprint = _fingerprint(cfg, examples, tdir, target.aux_layer_ids)
    tokens = sum(len(e.input_ids) for e in examples)
    bpt = bytes_per_token(hidden, cfg.storage_dtype)
    n_shards = math.ceil(len(examples) / cfg.shard_size)
    log.info("offline hidden states: %d sequences, %d tokens, H=%d, %s -> %d bytes/token, projected %.3f GB in "
             "%d shards under %s", len(examples), tokens, hidden, cfg.storage_dtype, bpt, tokens * bpt / 1e9,
             n_shards, out)

    manifest = read_manifest(out)
    if manifest is not None and _settings(manifest["fingerprint"]) != _settings(fingerprint):
        raise ValueError(f"{out} holds hidden states for another target/settings "
                         f"({_settings(manifest['fingerprint'])} != {_settings(fingerprint)}); use a new out_dir "
                         "or delete it")
    shards = {} if manifest is None else manifest["shards"]
    manifest = {"version": FORMAT_VERSION, "fingerprint": fingerprint, "target_model": cfg.target.model,
                "aux_layer_ids": target.aux_layer_ids, "hidden_size": hidden, "storage_dtype": cfg.storage_dtype,
                "num_sequences": len(examples), "num_tokens": tokens, "num_shards": n_shards,
                "bytes_per_token": bpt, "skipped": dict(skips), "tokenizer": stored_tokenizer_info(tokenizer),
                "shards": {k: v for k, v in shards.items() if int(k) < n_shards}}  # past the new end: dropped
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out, manifest)

    counts = {"reused": 0, "written": 0, "rewritten": 0}
    t0 = time.perf_counter()
    for i in progress(range(n_shards), desc="hidden-state shards"):
        chunk = examples[i * cfg.shard_size:(i + 1) * cfg.shard_size]
        want = _seq_fingerprint(chunk)
        entry = manifest["shards"].get(str(i))
        if entry is not None and shard_is_intact(out, entry):
            if _stored_fingerprint(out, entry) == want:
                entry["data"] = want
                counts["reused"] += 1
                continue
            log.info("shard %d holds other sequences (the data changed): rewriting", i)
            counts["rewritten"] += 1
        elif entry is not None:
            log.warning("shard %d (%s) fails its sha256/size check (corrupted or truncated): rewriting", i,
                        entry["file"])
            counts["rewritten"] += 1
        else:
            counts["written"] += 1
        seqs = target_states(target, chunk, cfg.batch_size)
        manifest["shards"][str(i)] = {**write_shard(out, i, pack_shard(seqs, cfg.storage_dtype)), "data": want}
        write_manifest(out, manifest)  # only now does shard i count as complete
        if on_shard is not None:
            on_shard(i)
    write_manifest(out, manifest)  # reused shards' sequence fingerprints, recorded once
    elapsed = time.perf_counter() - t0
    total_bytes = sum(e["bytes"] for e in manifest["shards"].values())
    report = {**counts, "shards": n_shards, "sequences": len(examples), "tokens": tokens,
              "bytes": total_bytes, "bytes_per_token_measured": total_bytes / max(tokens, 1),
              "bytes_per_token": bpt, "seconds": elapsed, "out_dir": str(out)}
    log.info("done: %s", report)
    return report


def main(argv: list[str] | None = None) -> int:
    """The `prepare` verb: prints the report as JSON."""
    cfg = config_from_cli(HiddenStatesConfig, argv, description=__doc__, example="data.limit=64 storage_dtype=fp16")
    print(json.dumps(prepare_hidden_states(cfg), indent=2))
    return 0
