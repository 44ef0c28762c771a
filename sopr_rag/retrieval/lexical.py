"""BM25 over arbitrary ids/texts (bm25s), with a tokenizer suited to technical English.

Identifiers such as `AlertmanagerFailedReload`, `kube_pod_status` or `config-reloader` are kept whole
AND split into their parts, so both "AlertmanagerFailedReload" and "alertmanager failed reload" match.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from pathlib import Path

import bm25s
import snowballstemmer

from runtime.checkpoint import atomic_write_json
from sopr_rag.retrieval.identifiers import CAMEL, SEPARATORS
from sopr_rag.retrieval.storage import atomic_dir

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*[A-Za-z0-9]|[A-Za-z0-9]")
_STEMMER = snowballstemmer.stemmer("english")
_STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN)
FORMAT_VERSION = 1


@functools.lru_cache(maxsize=1 << 18)
def _stem(word: str) -> str:
    """Snowball is pure Python (~0.1 ms a word): memoised, a 2 MB SOP tokenizes in seconds, not minutes."""
    return _STEMMER.stemWord(word)


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop-word-free, Snowball-stemmed tokens; compounds also emit their parts."""
    out: list[str] = []
    for raw in _TOKEN.findall(text):
        pieces = [w for p in SEPARATORS.split(raw) if p for w in CAMEL.findall(p)]
        words = [raw.lower()] if len(raw) > 1 else []
        if len(pieces) > 1:
            words += [w.lower() for w in pieces]
        elif pieces and pieces[0].lower() != raw.lower():
            words.append(pieces[0].lower())
        for w in words:
            if w in _STOPWORDS or (len(w) < 2 and not w.isdigit()):
                continue
            out.append(w)
    return [_stem(w) for w in out]


class BM25Index:
    """bm25s Okapi BM25 over (id, text) pairs. Build once; rebuild to change (BM25 stats are global)."""

    def __init__(self, k1: float = 1.2, b: float = 0.75):
        self.k1, self.b = k1, b
        self.ids: list[str] = []
        self._bm25: bm25s.BM25 | None = None
        self._vocab: set[str] = set()

    def build(self, ids: Sequence[str], texts: Sequence[str]) -> BM25Index:
        if len(ids) != len(texts):
            raise ValueError(f"ids ({len(ids)}) and texts ({len(texts)}) differ in length")
        if len(set(ids)) != len(ids):
            raise ValueError("BM25Index ids must be unique")
        self.ids = list(ids)
        if not self.ids:
            self._bm25, self._vocab = None, set()
            return self
        corpus = [tokenize(t) or ["<empty>"] for t in texts]  # bm25s needs >= 1 token per doc
        self._bm25 = bm25s.BM25(k1=self.k1, b=self.b)
        self._bm25.index(corpus, show_progress=False)
        self._vocab = set(self._bm25.vocab_dict)
        return self

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: str, k: int = 10) -> list[tuple[str, float]]:
        """Top-k (id, score), score > 0 only (a doc sharing no term with the query is not a hit)."""
        if self._bm25 is None or k <= 0:
            return []
        toks = [t for t in tokenize(query) if t in self._vocab]
        if not toks:
            return []
        docs, scores = self._bm25.retrieve([toks], k=min(k, len(self.ids)), show_progress=False, n_threads=0)
        return [(self.ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]

    def save(self, path: str | Path) -> None:
        with atomic_dir(path) as tmp:
            atomic_write_json(tmp / "meta.json", {"format": FORMAT_VERSION, "k1": self.k1, "b": self.b,
                                                   "ids": self.ids})
            if self._bm25 is not None:
                self._bm25.save(str(tmp / "bm25s"))

    @classmethod
    def load(cls, path: str | Path) -> BM25Index:
        path = Path(path)
        meta_file = path / "meta.json"
        if not meta_file.is_file():
            raise FileNotFoundError(f"no BM25 index at {path} (missing meta.json)")
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"BM25 index at {path} has format {meta.get('format')}, expected {FORMAT_VERSION}")
        idx = cls(k1=meta["k1"], b=meta["b"])
        idx.ids = list(meta["ids"])
        if idx.ids:
            idx._bm25 = bm25s.BM25.load(str(path / "bm25s"))
            idx._vocab = set(idx._bm25.vocab_dict)
        return idx
