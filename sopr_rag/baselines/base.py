"""What every baseline shares: its config, its on-disk manifest (doc -> content hash) and result building.

Baselines live beside the SOPRAG index (`index.index_dir / "baselines" / <method>`) and sync to the
index's current procedures on open: only documents whose content hash changed are re-chunked or
re-embedded, so they stay valid after incremental index updates.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import Field

from runtime.checkpoint import atomic_write_json
from runtime.config import StrictModel
from runtime.logging import get_logger
from sopr_rag.retrieval.embedder import DIM, Embedder
from sopr_rag.types import Procedure, SearchHit, SearchResult

log = get_logger("sopr_rag.baselines")


class IndexLike(Protocol):
    """The slice of SOPRAG's SopIndex that baselines need."""

    procedures: dict[str, Procedure]
    index_dir: Path


# What manifests have always recorded for the default MiniLM embedder (it was passed as None); kept so the
# baselines already built with MiniLM stay valid.
MINILM_ID = "NoneType"


def resolve_embedder(index: Any, embedder: Any = None) -> Any:
    """The embedder a baseline indexes and queries with: the one given, else the index's own (`embed_fn`), so
    a baseline over an index built with another embedder (the hashing one in tests and smoke runs) embeds
    like that index and never falls back to MiniLM; None only when neither is known (then MiniLM)."""
    return embedder if embedder is not None else getattr(index, "embed_fn", None)


def embedder_dim(embedder: Any) -> int:
    """The vector width `embedder` produces (DenseIndex's rule: its `dim`, else MiniLM's)."""
    return int(getattr(embedder, "dim", DIM)) if embedder is not None else DIM


def embedder_settings(embedder: Any) -> dict[str, Any]:
    """What a baseline's manifest records about its embedder: a different one (or width) rebuilds it."""
    if embedder is None or isinstance(embedder, Embedder):
        return {"embedder": MINILM_ID}
    name = type(embedder).__name__
    if name == "function":
        name = getattr(embedder, "__qualname__", name)
    return {"embedder": name, "dim": embedder_dim(embedder)}


class BaselineConfig(StrictModel):
    chunk_words: int = Field(200, ge=10)
    chunk_overlap: int = Field(40, ge=0)
    rrf_k: int = Field(60, ge=0)
    candidate_k: int = Field(100, ge=1)  # passages pulled per retriever before doc aggregation
    ppr_alpha: float = Field(0.5, gt=0, lt=1)  # restart probability of personalised PageRank
    entity_link_k: int = Field(5, ge=0)  # graph: query -> nearest entities by embedding
    entity_link_min_sim: float = Field(0.6, ge=-1, le=1)
    passage_seed_weight: float = Field(0.5, ge=0, le=1)  # graph: share of PPR restart mass on dense passages


@dataclass
class SyncPlan:
    added: list[str]
    removed: list[str]  # gone from the corpus, or changed (removed then re-added)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


class Manifest:
    """doc id -> content hash of what a baseline has indexed, plus the settings it was built with."""

    def __init__(self, path: Path, settings: dict[str, Any]):
        self.path, self.settings = path, settings
        self.hashes: dict[str, str] = {}
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if data.get("settings") == settings:  # different chunking etc. -> rebuild everything
                    self.hashes = dict(data.get("hashes", {}))
            except (OSError, ValueError, AttributeError, TypeError) as err:  # damaged: rebuild, never crash
                log.warning("baseline manifest %s is damaged (%s); rebuilding that baseline", path, err)

    def plan(self, procedures: dict[str, Procedure]) -> SyncPlan:
        stale = [d for d, h in self.hashes.items() if procedures.get(d) is None or procedures[d].content_hash != h]
        fresh = [d for d, p in procedures.items() if self.hashes.get(d) != p.content_hash]
        return SyncPlan(added=sorted(fresh), removed=sorted(stale))

    def commit(self, procedures: dict[str, Procedure]) -> None:
        self.hashes = {d: p.content_hash for d, p in procedures.items()}
        atomic_write_json(self.path, {"settings": self.settings, "hashes": self.hashes})


def best_per_doc(passage_scores: Iterable[tuple[str, float]], doc_of: dict[str, str]) -> list[tuple[str, float]]:
    """Document score = its best passage's score (max-P), documents in score order."""
    best: dict[str, float] = {}
    for pid, score in passage_scores:
        doc = doc_of.get(pid)
        if doc is not None and score > best.get(doc, float("-inf")):
            best[doc] = score
    return sorted(best.items(), key=lambda kv: -kv[1])


def steps_of(proc: Procedure) -> list[dict[str, Any]]:
    """A baseline has no step selection: it returns the top document's steps as written."""
    return [{"number": s.number, "text": s.text, "condition": s.condition} for s in proc.steps]


def to_result(query: str, ranked: list[tuple[str, float]], procedures: dict[str, Procedure], top_k: int,
              elapsed_ms: float, details: dict[str, dict[str, Any]] | None = None) -> SearchResult:
    hits = []
    for doc, score in ranked[:top_k]:
        proc = procedures.get(doc)
        if proc is None:
            continue
        hits.append(SearchHit(doc_id=doc, score=float(score), steps=steps_of(proc) if not hits else [],
                              details=(details or {}).get(doc, {})))
    return SearchResult(query=query, hits=hits, timings_ms={"search": elapsed_ms})
