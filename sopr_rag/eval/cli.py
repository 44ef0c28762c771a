"""`python -m sopr_rag evaluate`: every method on every gold query set -> JSON + markdown tables.

    python -m sopr_rag evaluate --index IDX --queries Q.jsonl [--queries Q2.jsonl] \\
        --methods soprag,bm25,dense,hybrid,graph [--ablations all] [--corpus DIR] [--utility] \\
        [--spec experiments/configs/sopr_rag/eval_runbooks.yaml] [--out R.json] [--md R.md]

--corpus builds or incrementally updates the index first. --spec is a YAML `EvalSpec` (query sets,
methods, ablations, utility settings); command-line flags override it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import Field

from runtime.config import StrictModel, load_config
from runtime.paths import cache_dir, results_dir
from sopr_rag.eval.harness import EvalConfig
from sopr_rag.eval.utility import UtilityConfig


class EvalSpec(StrictModel):
    title: str = ""
    corpus: str | None = None
    index: str | None = None
    queries: list[str] = Field(default_factory=list)
    eval: EvalConfig = EvalConfig()
    utility: UtilityConfig = UtilityConfig()
    out: str | None = None  # JSON path; the markdown goes beside it


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def cmd_evaluate(args: argparse.Namespace) -> int:
    from sopr_rag.config import SopragConfig
    from sopr_rag.eval.ablations import ABLATIONS
    from sopr_rag.eval.queries import load_queries
    from sopr_rag.eval.run import evaluate, write_results
    from sopr_rag.index import SopIndex

    spec = load_config(EvalSpec, args.spec, args.eval_set)
    if args.methods:
        spec.eval.methods = _csv(args.methods)
    if args.ablations:
        spec.eval.ablations = list(ABLATIONS) if args.ablations == "all" else _csv(args.ablations)
    if args.utility:
        spec.utility.enabled = True
    for key in ("index", "corpus", "out"):
        if getattr(args, key):
            setattr(spec, key, getattr(args, key))
    if args.queries:
        spec.queries = args.queries
    soprag_cfg = load_config(SopragConfig, args.config, args.set)
    if not spec.index and spec.corpus:  # default: a per-corpus (and card mode) index in the project cache
        suffix = "" if soprag_cfg.cards.mode == "rules" else "-llmcards"
        spec.index = str(cache_dir("sopr_rag") / f"index-{Path(spec.corpus).resolve().name}{suffix}")
    if not spec.index or not spec.queries:
        raise ValueError("evaluate needs --index (or --corpus) and at least one --queries file")
    if spec.corpus:
        from sopr_rag.cards.llm import make_card_builder

        index, _ = SopIndex.build(spec.corpus, spec.index, card_builder=make_card_builder(soprag_cfg.cards))
    else:
        index = SopIndex.load(spec.index)
    sets = [load_queries(q) for q in spec.queries]
    results = evaluate(index, sets, spec.eval, soprag_cfg, spec.utility)
    results["title"] = spec.title
    out = Path(spec.out) if spec.out else results_dir() / "rag_eval.json"
    write_results(results, out, args.md or out.with_suffix(".md"))
    for name, qset in results["query_sets"].items():
        for method, m in qset["methods"].items():
            o = m["overall"]
            print(f"{name:28s} {method:24s} MRR {o['mrr']:.3f}  Hit@1 {o['hit@1']:.3f}  Hit@5 {o['hit@5']:.3f}"
                  + (f"  StepAcc {o['step_acc']:.3f}" if "step_acc" in o else ""))
    print(f"wrote {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evaluate", help="retrieval / step / utility metrics for SOPRAG and the baselines")
    p.add_argument("--index", help="index folder (built from --corpus if given)")
    p.add_argument("--corpus", help="build or incrementally update the index from this SOP folder first")
    p.add_argument("--queries", action="append", help="gold query JSONL (repeatable)")
    p.add_argument("--methods", help="comma list: soprag,bm25,bm25-chunk,dense,hybrid,graph")
    p.add_argument("--ablations", help="comma list or 'all': no-pruning,uniform-gate,-entity,-causal,-flow,"
                                       "oracle-intent")
    p.add_argument("--utility", action="store_true", help="also answer + judge (LLM; slow on CPU)")
    p.add_argument("--spec", help="EvalSpec YAML (experiments/configs/sopr_rag/eval_*.yaml)")
    p.add_argument("--eval-set", action="append", default=[], metavar="KEY=VALUE", help="EvalSpec override")
    p.add_argument("--out", help="results JSON (default experiments/results/rag_eval.json)")
    p.add_argument("--md", help="markdown tables (default: beside the JSON)")
    p.add_argument("--config", default=None, help="SOPRAG YAML config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="SOPRAG config override")
    p.set_defaults(func=cmd_evaluate)
