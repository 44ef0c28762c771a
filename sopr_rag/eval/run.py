"""`evaluate`: run every method (+ ablations) on every query set, write JSON + markdown."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from runtime.checkpoint import atomic_write_json, atomic_write_text
from runtime.logging import get_logger
from runtime.results import with_provenance
from sopr_rag.config import SopragConfig
from sopr_rag.eval.harness import RetrievalEvalConfig, breakdown, run_method
from sopr_rag.eval.queries import QuerySet
from sopr_rag.eval.report import to_markdown
from sopr_rag.eval.utility import UtilityConfig, UtilityScorer
from sopr_rag.retrievers import check_method, make_retriever

log = get_logger("sopr_rag.eval")


def evaluate(index: Any, query_sets: list[QuerySet], cfg: RetrievalEvalConfig, soprag_cfg: SopragConfig | None = None,
             utility: UtilityConfig | None = None, llm: Any = None) -> dict[str, Any]:
    """Results dict: {"query_sets": {name: {"n", "skipped", "methods": {method: breakdown + per_query}}}}."""
    soprag_cfg = soprag_cfg or SopragConfig()
    intent_of = {q.query: q.intent for qs in query_sets for q in qs.queries}
    names = [check_method(n) for n in dict.fromkeys(cfg.methods + [f"soprag[{a}]" for a in cfg.ablations])]
    scorer = UtilityScorer(utility, index.procedures, llm) if utility and utility.enabled else None
    out: dict[str, Any] = {"index": str(index.index_dir), "n_docs": len(index.procedures),
                           "config": cfg.model_dump(), "query_sets": {}}
    retrievers: dict[str, Any] = {}
    build_s: dict[str, float] = {}
    for name in names:
        t0 = time.perf_counter()
        retrievers[name] = make_retriever(name, index, soprag_cfg, intent_of=intent_of)
        build_s[name] = time.perf_counter() - t0
        log.info("opened %s in %.1f s", name, build_s[name])
    out["open_seconds"] = build_s
    for qs in query_sets:
        entry: dict[str, Any] = {"n": len(qs.queries), "skipped": len(qs.skipped),
                                 "skipped_lines": qs.skipped, "methods": {}}
        for name, retriever in retrievers.items():
            records = run_method(name, retriever, qs, cfg, on_result=scorer.plan if scorer else None)
            if scorer is not None:
                scorer.flush(records)  # answers + judge for the queries `plan` queued, batched
            entry["methods"][name] = {**breakdown(records), "per_query": records}
        out["query_sets"][qs.name] = entry
    if scorer is not None:
        out["utility"] = scorer.summary()
    return out


def write_results(results: dict[str, Any], out_json: str | Path, out_md: str | Path | None = None) -> None:
    """`results` as JSON (the caller records its `command`) and, if `out_md`, as markdown tables."""
    atomic_write_json(out_json, with_provenance(results, config=results.get("config")))
    if out_md:
        atomic_write_text(out_md, to_markdown(results))
    log.info("wrote %s%s", out_json, f" and {out_md}" if out_md else "")
