"""Run retrievers over gold query sets and aggregate: overall, per intent, per difficulty.

Per query: retrieval metrics of the ranked documents; for flow queries with gold steps, whether the
top hit's ordered steps contain the gold steps in order. Utility (LLM judge + execution score) is
added by `sopr_rag.eval.utility` when asked for, over the same search results.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import Field

from runtime.config import StrictModel
from runtime.logging import get_logger, progress
from sopr_rag.eval.metrics import mean, retrieval_metrics, step_metrics
from sopr_rag.eval.queries import GoldQuery, QuerySet
from sopr_rag.retrievers import METHODS
from sopr_rag.types import Retriever, SearchResult

log = get_logger("sopr_rag.eval")


class RetrievalEvalConfig(StrictModel):
    methods: list[str] = Field(default_factory=lambda: list(METHODS))  # names from sopr_rag/retrievers.py
    ablations: list[str] = Field(default_factory=list)  # names from sopr_rag.eval.ablations.ABLATIONS
    top_k: int = Field(10, ge=1)
    step_intents: list[str] = Field(default_factory=lambda: ["flow"])  # step accuracy is scored on these


def evaluate_one(retriever: Retriever, q: GoldQuery, cfg: RetrievalEvalConfig) -> tuple[dict[str, Any], SearchResult]:
    t0 = time.perf_counter()
    result = retriever.search(q.query, cfg.top_k)
    latency = (time.perf_counter() - t0) * 1e3
    ranked = [h.doc_id for h in result.hits]
    rec: dict[str, Any] = {"id": q.id, "intent": q.intent, "difficulty": q.difficulty, "ranked": ranked[:cfg.top_k],
                           "latency_ms": latency, **retrieval_metrics(ranked, q.gold_docs)}
    if q.gold_steps and q.intent in cfg.step_intents:
        steps = [s["text"] for s in (result.hits[0].steps if result.hits else [])]
        rec.update(step_metrics(q.gold_steps, steps))
    return rec, result


def aggregate(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean of every numeric metric (each over the queries that have it) + n."""
    keys = sorted({k for r in records for k, v in r.items() if isinstance(v, (int, float)) and k not in ("id",)
                   and not isinstance(v, bool)})
    out: dict[str, Any] = {"n": len(records)}
    for k in keys:
        vals = [float(r[k]) for r in records if isinstance(r.get(k), (int, float))]
        out[k] = mean(vals)
        if k.startswith("step_") or k in ("utility", "execution"):
            out[f"n_{k}"] = len(vals)
    lat = sorted(float(r["latency_ms"]) for r in records if "latency_ms" in r)
    if lat:
        out["p95_latency_ms"] = lat[int(0.95 * (len(lat) - 1))]
    return out


def breakdown(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    groups: dict[str, dict[str, list]] = {"by_intent": defaultdict(list), "by_difficulty": defaultdict(list)}
    for r in records:
        groups["by_intent"][str(r.get("intent"))].append(r)
        groups["by_difficulty"][str(r.get("difficulty"))].append(r)
    return {"overall": aggregate(records),
            **{g: {k: aggregate(v) for k, v in sorted(parts.items())} for g, parts in groups.items()}}


def run_method(name: str, retriever: Retriever, qs: QuerySet, cfg: RetrievalEvalConfig,
               on_result: Callable[[GoldQuery, SearchResult], None] | None = None) -> list[dict[str, Any]]:
    records = []
    for q in progress(qs.queries, desc=f"{qs.name}:{name}"):
        rec, result = evaluate_one(retriever, q, cfg)
        records.append(rec)
        if on_result is not None:
            on_result(q, result)
    return records
