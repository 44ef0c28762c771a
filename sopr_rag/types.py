"""Core SOPRAG types shared by ingestion, the experts, the baselines and evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class Step:
    number: str  # "3", "3.2", "4b": as written in the document (citation key)
    text: str
    condition: str | None = None  # "if ..." branch condition guarding this step, if any
    section: str | None = None  # heading the step sits under


@dataclass
class Procedure:
    """One SOP document, parsed. `doc_id` = path relative to the corpus root, POSIX separators."""

    doc_id: str
    title: str
    text: str  # full raw text (what lexical/dense baselines index)
    content_hash: str
    scope: str = ""
    triggers: list[str] = field(default_factory=list)  # triggers, symptoms, alerts
    preconditions: list[str] = field(default_factory=list)
    hazards: list[str] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)  # stated causes / "why it happens" (causal expert)
    entities: list[str] = field(default_factory=list)  # components, parameters, commands, alert names
    steps: list[Step] = field(default_factory=list)
    outcome: str = ""
    sections: dict[str, str] = field(default_factory=dict)  # heading -> body
    metadata: dict[str, Any] = field(default_factory=dict)  # YAML front matter and parser notes


@dataclass
class SearchHit:
    doc_id: str
    score: float
    steps: list[dict[str, Any]] = field(default_factory=list)  # [{"number", "text", "condition"}], ordered
    details: dict[str, Any] = field(default_factory=dict)  # per-expert scores etc.


@dataclass
class SearchResult:
    query: str
    hits: list[SearchHit]
    expert_weights: dict[str, float] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_record(self, qid: Any) -> dict[str, Any]:
        """The `search` CLI output line schema."""
        return {"id": qid, "ranked_docs": [h.doc_id for h in self.hits], "scores": [h.score for h in self.hits],
                "expert_weights": self.expert_weights, "steps": self.hits[0].steps if self.hits else []}


class Retriever(Protocol):
    """Anything `--method` can name: SOPRAG itself and every baseline."""

    name: str

    def search(self, query: str, top_k: int = 10) -> SearchResult: ...
