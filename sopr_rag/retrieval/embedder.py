"""Sentence embeddings: one MiniLM per process, results cached by text hash."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

DIM = 384
_CACHE_MAX = 50_000

_lock = threading.Lock()
_model: Any = None
_cache: OrderedDict[str, np.ndarray] = OrderedDict()


def get_model() -> Any:
    """The process-wide sentence-transformers model (loaded on first use, offline)."""
    global _model
    with _lock:
        if _model is None:
            from runtime.assets import load_embedder

            _model = load_embedder()
        return _model


def _key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def embed(texts: Sequence[str], *, model: Any = None, batch_size: int = 32) -> np.ndarray:
    """[n, dim] float32, L2-normalised rows. Repeated texts are embedded once per process."""
    if isinstance(texts, str):
        raise TypeError("embed() takes a list of texts, not a single string")
    keys = [_key(t) for t in texts]
    missing = [i for i, k in enumerate(keys) if k not in _cache]
    if missing:
        uniq: dict[str, str] = {keys[i]: texts[i] for i in missing}
        enc = model if model is not None else get_model()
        vecs = enc.encode(list(uniq.values()), batch_size=batch_size, convert_to_numpy=True,
                          normalize_embeddings=True, show_progress_bar=False).astype(np.float32)
        with _lock:
            for k, v in zip(uniq, vecs):
                _cache[k] = v
            while len(_cache) > _CACHE_MAX:
                _cache.popitem(last=False)
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    out = np.stack([_cache[k] for k in keys]).astype(np.float32)
    # Re-normalise: cheap, and guards against an encoder that ignored normalize_embeddings.
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


class Embedder:
    """Callable wrapper so indexes can take an injected embedder (tests pass a tiny fake)."""

    dim = DIM

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return embed(texts)


class HashingEmbedder:
    """Deterministic bag-of-hashed-tokens embedder: no model, for tests and smoke runs only."""

    def __init__(self, dim: int = 64):
        self.dim = dim

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        from sopr_rag.retrieval.lexical import tokenize

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for tok in tokenize(text):
                h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            out[row] /= max(float(np.linalg.norm(out[row])), 1e-12)
        return out
