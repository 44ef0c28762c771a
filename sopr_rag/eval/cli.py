"""Verb `python -m sopr_rag evaluate`: every method on every gold query set -> JSON + markdown tables.

    python -m sopr_rag evaluate --index IDX --queries Q.jsonl [--queries Q2.jsonl] \\
        --methods soprag,bm25,dense,hybrid,graph [--ablations all] [--corpus DIR] [--utility] \\
        [--spec EVAL_SPEC.yaml] [--config SOPRAG.yaml] [key=value ...] [--out R.json] [--md R.md]

--corpus builds or incrementally updates the index first. --spec is a YAML `EvalSpec` (query sets,
methods, ablations, utility settings); command-line flags override it. A `key=value` override whose
first key is an EvalSpec field (title, corpus, index, queries, eval, utility, out) sets the spec, any
other one the SopragConfig. The results JSON goes to --out, else the spec's `out`, else
$LLMSYS_RESULTS_DIR/sopr_rag_eval.json (runtime.paths.results_dir()); the markdown beside it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from runtime.config import StrictModel, load_config
from runtime.paths import cache_dir, results_dir
from sopr_rag.cards.glossary import make_glossary_builder
from sopr_rag.cards.llm import make_card_builder
from sopr_rag.cli import command_line, exits_2_on_error, parse_verb_args, settings, split_overrides, verb_parser
from sopr_rag.eval.ablations import ABLATIONS
from sopr_rag.eval.harness import RetrievalEvalConfig
from sopr_rag.eval.queries import load_queries
from sopr_rag.eval.run import evaluate as run_evaluation
from sopr_rag.eval.run import write_results
from sopr_rag.eval.utility import UtilityConfig
from sopr_rag.index import SopIndex
from sopr_rag.retrievers import check_method


class EvalSpec(StrictModel):
    title: str = ""
    corpus: str | None = None
    index: str | None = None
    queries: list[str] = Field(default_factory=list)
    eval: RetrievalEvalConfig = RetrievalEvalConfig()
    utility: UtilityConfig = UtilityConfig()
    out: str | None = None  # JSON path; the markdown goes beside it


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


@exits_2_on_error
def evaluate(argv: list[str]) -> int:
    ap = verb_parser("evaluate", "Retrieval / step / utility metrics for SOPRAG, its ablations and the baselines.",
                     spec=EvalSpec)
    ap.add_argument("--index", help="index folder (built from --corpus if given)")
    ap.add_argument("--corpus", help="build or incrementally update the index from this SOP folder first")
    ap.add_argument("--queries", action="append", help="gold query JSONL (repeatable)")
    ap.add_argument("--methods", help="comma list: soprag,bm25,bm25-chunk,dense,hybrid,graph")
    ap.add_argument("--ablations", help=f"comma list or 'all': {','.join(ABLATIONS)}")
    ap.add_argument("--utility", action="store_true", help="also answer + judge (LLM; slow on CPU)")
    ap.add_argument("--out", help="results JSON (default: the spec's out, else $LLMSYS_RESULTS_DIR/sopr_rag_eval.json)")
    ap.add_argument("--md", help="markdown tables (default: beside the JSON)")
    args = parse_verb_args(ap, argv)
    soprag_overrides, spec_overrides = split_overrides(args.overrides, EvalSpec)
    spec = load_config(EvalSpec, args.spec, spec_overrides)
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
    soprag_cfg = settings(args, soprag_overrides)
    for name in spec.eval.methods + [f"soprag[{a}]" for a in spec.eval.ablations]:
        check_method(name)  # before any index is built
    if not spec.index and spec.corpus:  # default: a per-corpus (and card mode) index in the project cache
        suffix = "" if soprag_cfg.cards.mode == "rules" else "-llmcards"
        spec.index = str(cache_dir("sopr_rag") / f"index-{Path(spec.corpus).resolve().name}{suffix}")
    if not spec.index or not spec.queries:
        raise ValueError("evaluate needs --index (or --corpus) and at least one --queries file")
    if spec.corpus:
        cards = make_card_builder(soprag_cfg.cards)
        index, _ = SopIndex.build(spec.corpus, spec.index, card_builder=cards,
                                  glossary_builder=make_glossary_builder(soprag_cfg.cards, cards))
    else:
        index = SopIndex.load(spec.index)
    sets = [load_queries(q) for q in spec.queries]
    results = run_evaluation(index, sets, spec.eval, soprag_cfg, spec.utility)
    results["title"] = spec.title
    results["command"] = command_line("evaluate", argv)
    out = Path(spec.out) if spec.out else results_dir() / "sopr_rag_eval.json"
    write_results(results, out, args.md or out.with_suffix(".md"))
    for name, qset in results["query_sets"].items():
        for method, m in qset["methods"].items():
            o = m["overall"]
            print(f"{name:28s} {method:24s} MRR {o['mrr']:.3f}  Hit@1 {o['hit@1']:.3f}  Hit@5 {o['hit@5']:.3f}"
                  + (f"  StepAcc {o['step_acc']:.3f}" if "step_acc" in o else ""))
    print(f"wrote {out}")
    return 0
