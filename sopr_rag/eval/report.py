"""Markdown tables from the evaluation JSON (written atomically next to it)."""

from __future__ import annotations

import math
from typing import Any

MAIN_COLUMNS = [("hit@1", "Hit@1"), ("hit@3", "Hit@3"), ("hit@5", "Hit@5"), ("hit@10", "Hit@10"),
                ("recall@10", "R@10"), ("mrr", "MRR"), ("ndcg@10", "nDCG@10"), ("step_acc", "StepAcc"),
                ("utility", "Utility"), ("execution", "Exec"), ("p95_latency_ms", "p95 ms")]


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.3f}"
    return str(v)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + \
           ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]


def to_markdown(results: dict[str, Any]) -> str:
    lines = [f"# SOPRAG evaluation: {results.get('title', '')}".rstrip(), "",
             f"Index: `{results.get('index')}` ({results.get('n_docs')} procedures). "
             f"Command: `{results.get('command', '')}`", ""]
    for set_name, qset in results["query_sets"].items():
        methods = qset["methods"]
        cols = [c for c in MAIN_COLUMNS if any(c[0] in m["overall"] for m in methods.values())]
        lines += [f"## {set_name} ({qset['n']} queries, {qset['skipped']} skipped lines)", ""]
        rows = [[name] + [m["overall"].get(k) for k, _ in cols] for name, m in methods.items()]
        lines += _table(["method"] + [c for _, c in cols], rows) + [""]
        for group, metric in (("by_intent", "mrr"), ("by_difficulty", "mrr"), ("by_difficulty", "hit@1")):
            keys = sorted({k for m in methods.values() for k in m[group]})
            first = next(iter(methods.values()))[group]
            counts = ", ".join(f"{k}={first.get(k, {}).get('n', 0)}" for k in keys)
            label = "MRR" if metric == "mrr" else "Hit@1"
            lines += [f"{label} {group.replace('_', ' ')} (n: {counts})", ""]
            rows = [[name] + [m[group].get(k, {}).get(metric) for k in keys] for name, m in methods.items()]
            lines += _table(["method"] + keys, rows) + [""]
    if results.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in results["notes"]] + [""]
    return "\n".join(lines)
