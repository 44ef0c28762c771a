"""Dense passage index: normalised sentence embeddings in FAISS (inner product = cosine), add/remove by id.

String ids map to stable int64 FAISS ids (IndexIDMap2), so `remove` works without a rebuild and
incremental index updates only embed what changed. faiss-gpu is used when it is installed and a GPU
is visible; the saved index is always the CPU form.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import faiss
import numpy as np

from runtime.checkpoint import atomic_write_json
from runtime.logging import get_logger
from sopr_rag.retrieval.embedder import DIM, Embedder
from sopr_rag.retrieval.storage import atomic_dir

log = get_logger("sopr_rag.dense")
EmbedFn = Callable[[Sequence[str]], np.ndarray]
FORMAT_VERSION = 1


def _to_gpu(index: faiss.Index) -> faiss.Index:
    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        return faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    return index


class DenseIndex:
    def __init__(self, embedder: EmbedFn | None = None, dim: int | None = None):
        self.embedder: EmbedFn = embedder if embedder is not None else Embedder()
        self.dim = dim or getattr(self.embedder, "dim", DIM)
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        self._int_of: dict[str, int] = {}
        self._str_of: dict[int, str] = {}
        self._next = 0

    def __len__(self) -> int:
        return len(self._int_of)

    def __contains__(self, item: str) -> bool:
        return item in self._int_of

    @property
    def ids(self) -> list[str]:
        return list(self._int_of)

    def add(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Add (or replace) passages; re-adding an id replaces its vector."""
        if len(ids) != len(texts):
            raise ValueError(f"ids ({len(ids)}) and texts ({len(texts)}) differ in length")
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate ids in one add() call")
        if not ids:
            return
        self.remove([i for i in ids if i in self._int_of])
        vecs = np.ascontiguousarray(self.embedder(list(texts)), dtype=np.float32)
        if vecs.shape != (len(ids), self.dim):
            raise ValueError(f"embedder returned shape {vecs.shape}, expected ({len(ids)}, {self.dim})")
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        nums = np.arange(self._next, self._next + len(ids), dtype=np.int64)
        self._next += len(ids)
        self._index.add_with_ids(vecs, nums)
        for s, n in zip(ids, nums.tolist()):
            self._int_of[s], self._str_of[n] = n, s

    def remove(self, ids: Sequence[str]) -> int:
        """Remove ids; unknown ids are ignored. Returns how many were removed."""
        nums = [self._int_of.pop(i) for i in ids if i in self._int_of]
        for n in nums:
            del self._str_of[n]
        if nums:
            self._index.remove_ids(np.asarray(nums, dtype=np.int64))
        return len(nums)

    def search(self, query: str, k: int = 10) -> list[tuple[str, float]]:
        return self.search_vector(self.embedder([query])[0], k)

    def search_vector(self, vec: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
        if not self._int_of or k <= 0:
            return []
        q = np.ascontiguousarray(vec.reshape(1, -1), dtype=np.float32)
        q /= max(float(np.linalg.norm(q)), 1e-12)
        scores, nums = _to_gpu(self._index).search(q, min(k, len(self._int_of)))
        return [(self._str_of[int(n)], float(s)) for s, n in zip(scores[0], nums[0]) if n >= 0]

    def save(self, path: str | Path) -> None:
        with atomic_dir(path) as tmp:
            faiss.write_index(self._index, str(tmp / "index.faiss"))
            atomic_write_json(tmp / "ids.json", {"format": FORMAT_VERSION, "dim": self.dim, "next": self._next,
                                                 "ids": self._int_of})

    @classmethod
    def load(cls, path: str | Path, embedder: EmbedFn | None = None) -> DenseIndex:
        path = Path(path)
        if not (path / "ids.json").is_file() or not (path / "index.faiss").is_file():
            raise FileNotFoundError(f"no dense index at {path}")
        meta = json.loads((path / "ids.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"dense index at {path} has format {meta.get('format')}, expected {FORMAT_VERSION}")
        idx = cls(embedder, dim=meta["dim"])
        idx._index = faiss.read_index(str(path / "index.faiss"))
        if idx._index.ntotal != len(meta["ids"]):
            raise ValueError(f"dense index at {path} is inconsistent: {idx._index.ntotal} vectors, "
                             f"{len(meta['ids'])} ids")
        idx._int_of = {s: int(n) for s, n in meta["ids"].items()}
        idx._str_of = {n: s for s, n in idx._int_of.items()}
        idx._next = int(meta["next"])
        return idx
