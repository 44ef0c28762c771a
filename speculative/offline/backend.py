"""A TargetBackend that reads precomputed hidden states from shards instead of running the target.

Batches are matched to stored sequences by the sha1 of their token ids, so the trainer, its
`BatchSchedule` and its checkpoints work unchanged. The target head is re-applied here, on the draft
vocab rows only (`restricted_probs`), from the embedding/lm_head tensors of the target checkpoint.
Each shard is hashed against the manifest the first time it is opened: a damaged shard raises.
Nothing here imports a transformers model module: the target config is read from its config.json and the
tokenizer's part in training (vocab-mapping cache key, pad id) comes from the manifest (`StoredTokenizer`),
so an offline run stays ~250 MB smaller than one that loads the HF tokenizer or AutoConfig.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from safetensors import safe_open

from runtime.assets.models import model_dir
from speculative.data.chat import tokenizer_fingerprint
from speculative.data.dataset import Example
from speculative.offline.shards import CorruptShardError, read_manifest, shard_is_intact
from speculative.parallel.hf_weights import HFWeights
from speculative.target.backend import TargetBackend, TargetOutputs, restricted_probs


@dataclass(frozen=True)
class StoredTokenizer:
    """What draft training reads of the tokenizer, as recorded at prepare time: the fingerprint that keys the
    vocab-mapping cache (speculative.data.chat.tokenizer_fingerprint) and the pad id."""

    fingerprint: str
    pad_token_id: int | None


def stored_tokenizer_info(tokenizer: Any) -> dict[str, Any]:
    return {"fingerprint": tokenizer_fingerprint(tokenizer), "pad_token_id": tokenizer.pad_token_id}


def sequence_key(input_ids: torch.Tensor) -> str:
    return hashlib.sha1(input_ids.to(torch.int64).cpu().numpy().tobytes()).hexdigest()


class OfflineTargetBackend(TargetBackend):
    def __init__(self, directory: str | Path, *, compute_dtype: torch.dtype = torch.float32):
        self.dir = Path(directory)
        manifest = read_manifest(self.dir)
        if manifest is None:
            raise FileNotFoundError(f"no offline hidden states in {self.dir} (run python -m "
                                    "speculative.prepare_hidden_states first)")
        missing = [i for i in range(manifest["num_shards"]) if str(i) not in manifest["shards"]]
        if missing:
            raise CorruptShardError(f"{self.dir} is incomplete (shards {missing[:5]}... not written): re-run "
                                    "prepare_hidden_states with the same config to finish it")
        self.manifest = manifest
        self.compute_dtype = compute_dtype
        tdir = model_dir(manifest["target_model"])
        # config.json as written by transformers (every field the draft derives from is explicit there)
        self.config = SimpleNamespace(**json.loads((tdir / "config.json").read_text()))
        self.aux_layer_ids = list(manifest["aux_layer_ids"])
        weights = HFWeights(tdir)
        self._embed = weights.get("model.embed_tokens.weight")
        tied = bool(getattr(self.config, "tie_word_embeddings", False)) or "lm_head.weight" not in weights
        self._head = self._embed if tied else weights.lm_head(False)  # tied: one tensor, not a second copy
        self._verified: set[int] = set()
        self._index: dict[str, tuple[int, int, int]] = {}  # key -> (shard, start row, end row)
        for i in range(manifest["num_shards"]):
            t = self._open(i)
            ids, offsets = t.get_tensor("input_ids"), t.get_tensor("offsets")
            for j in range(len(offsets) - 1):
                s, e = int(offsets[j]), int(offsets[j + 1])
                self._index.setdefault(sequence_key(ids[s:e]), (i, s, e))

    def _open(self, index: int):
        entry = self.manifest["shards"][str(index)]
        if index not in self._verified:
            if not shard_is_intact(self.dir, entry):
                raise CorruptShardError(f"{self.dir / entry['file']} does not match its manifest sha256/size "
                                        "(corrupted or truncated): re-run prepare_hidden_states to rewrite it")
            self._verified.add(index)
        return safe_open(str(self.dir / entry["file"]), "pt")

    def stored_tokenizer(self) -> StoredTokenizer | None:
        """The tokenizer facts the manifest recorded (None for shards prepared before they were recorded)."""
        info = self.manifest.get("tokenizer")
        return StoredTokenizer(**info) if info else None

    def examples(self) -> list[Example]:
        """The stored sequences in prepare order (= the online run's example order)."""
        out = []
        for i in range(self.manifest["num_shards"]):
            t = self._open(i)
            ids, mask, offsets = t.get_tensor("input_ids"), t.get_tensor("loss_mask"), t.get_tensor("offsets")
            out += [Example(ids[offsets[j]:offsets[j + 1]].clone(), mask[offsets[j]:offsets[j + 1]].clone())
                    for j in range(len(offsets) - 1)]
        return out

    def embedding_weight(self) -> torch.Tensor:
        return self._embed

    def store_embedding_as(self, dtype: torch.dtype) -> None:
        """Keep the frozen embedding / head table in `dtype` (precision=bf16: half of 113 MB for SmolLM2; the
        head GEMM runs in bf16 under autocast anyway, and the draft's embeddings pass a norm before bf16 GEMMs)."""
        tied = self._head is self._embed
        self._embed = self._embed.to(dtype)
        self._head = self._embed if tied else self._head.to(dtype)

    @torch.no_grad()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, t2d: torch.Tensor) -> TargetOutputs:
        b, t = input_ids.shape
        h = self.manifest["hidden_size"]
        aux = torch.zeros(b, t, 3 * h, dtype=self.compute_dtype)
        last = torch.zeros(b, t, h, dtype=self.compute_dtype)
        argmax = torch.zeros(b, t, dtype=torch.int64)
        for row in range(b):
            n = int(attention_mask[row].sum())
            key = sequence_key(input_ids[row, :n])
            if key not in self._index:
                raise KeyError(f"batch row {row} ({n} tokens) is not in the offline shards of {self.dir}: the "
                               "training data differs from the data the hidden states were prepared for")
            shard, s, e = self._index[key]
            f = self._open(shard)
            aux[row, :n] = f.get_slice("aux_hidden")[s:e].to(self.compute_dtype)
            last[row, :n] = f.get_slice("last_hidden")[s:e].to(self.compute_dtype)
            argmax[row, :n] = f.get_slice("target_argmax")[s:e].long()
        device = input_ids.device
        aux, last = aux.to(device), last.to(device)
        probs = restricted_probs(last, self._head.to(device), t2d.to(device))
        return TargetOutputs(aux_hidden=aux, last_hidden=last, target_probs=probs, target_argmax=argmax.to(device))
