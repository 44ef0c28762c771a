"""On-disk format of offline hidden states: safetensors shards + one JSON manifest.

Shard `shard_00000.safetensors` packs its sequences back to back (no padding):
  input_ids [N] int64, loss_mask [N] bool, offsets [n+1] int64 (sequence i = rows offsets[i]:offsets[i+1]),
  aux_hidden [N, 3*H] and last_hidden [N, H] in the storage dtype, target_argmax [N] int32 (the
full-vocab argmax, so rows the draft vocab cannot predict are masked without the full head at training
time). No logits: the target head is re-applied on the draft vocab at training time, which is what
keeps the format ~4*H values per token.
`manifest.json` lists each finished shard with its counts and sha256; a shard absent from it or whose
file does not hash to the recorded value is incomplete and gets rewritten (or refused when reading).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from runtime.checkpoint import atomic_save_tensors, atomic_write_json

MANIFEST = "manifest.json"
FORMAT_VERSION = 2
STORAGE_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


class CorruptShardError(RuntimeError):
    pass


def shard_name(index: int) -> str:
    return f"shard_{index:05d}.safetensors"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def bytes_per_token(hidden_size: int, storage_dtype: str) -> int:
    """4*H hidden values (3 aux + last) + the int64 id + the bool mask + the int32 target argmax."""
    return 4 * hidden_size * STORAGE_DTYPES[storage_dtype].itemsize + 8 + 1 + 4


def pack_shard(seqs: list[dict[str, torch.Tensor]], storage_dtype: str) -> dict[str, torch.Tensor]:
    """Concatenate per-sequence {input_ids, loss_mask, aux_hidden, last_hidden} into one shard dict."""
    dtype = STORAGE_DTYPES[storage_dtype]
    lengths = torch.tensor([len(s["input_ids"]) for s in seqs], dtype=torch.int64)
    return {"input_ids": torch.cat([s["input_ids"] for s in seqs]).long(),
            "loss_mask": torch.cat([s["loss_mask"] for s in seqs]).bool(),
            "offsets": torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)]),
            "aux_hidden": torch.cat([s["aux_hidden"] for s in seqs]).to(dtype),
            "last_hidden": torch.cat([s["last_hidden"] for s in seqs]).to(dtype),
            "target_argmax": torch.cat([s["target_argmax"] for s in seqs]).to(torch.int32)}


def write_shard(directory: Path, index: int, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Atomically write shard `index`; returns its manifest entry (counts, dtypes, sha256)."""
    path = atomic_save_tensors(directory / shard_name(index), tensors)
    return {"index": index, "file": path.name, "sequences": int(tensors["offsets"].numel() - 1),
            "tokens": int(tensors["input_ids"].numel()), "loss_tokens": int(tensors["loss_mask"].sum()),
            "dtypes": {k: str(v.dtype).removeprefix("torch.") for k, v in tensors.items()},
            "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def shard_is_intact(directory: Path, entry: dict[str, Any]) -> bool:
    path = directory / entry["file"]
    return path.is_file() and path.stat().st_size == entry["bytes"] and sha256_file(path) == entry["sha256"]


def read_manifest(directory: str | Path) -> dict[str, Any] | None:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text())
    if manifest.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {manifest.get('version')} != {FORMAT_VERSION}")
    return manifest


def write_manifest(directory: str | Path, manifest: dict[str, Any]) -> None:
    atomic_write_json(Path(directory) / MANIFEST, manifest)
