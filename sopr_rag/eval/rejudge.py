"""Verb `python -m sopr_rag rejudge RESULTS.json --spec SPEC.yaml --out OUT.json [key=value ...]`: re-run
only the LLM judge on saved answers (`key=value` overrides set EvalSpec keys, e.g. utility.backend=openai).

Answers are the expensive part of `evaluate --utility` on a CPU; when the judge prompt changes, the saved
answers in RESULTS.json are graded again (same rubric, `judge.make_judge`) and written to --out (utility,
judge, judge_error per query; method aggregates recomputed). Retrieval metrics are copied, not re-run.
"""

from __future__ import annotations

import json
from pathlib import Path

from runtime.config import load_config
from runtime.logging import get_logger
from sopr_rag.bench.cli import load_procedures
from sopr_rag.cli import command_line, exits_2_on_error, parse_verb_args, verb_parser
from sopr_rag.eval.cli import EvalSpec
from sopr_rag.eval.harness import breakdown
from sopr_rag.eval.judge import PROMPT_VERSION, make_judge
from sopr_rag.eval.queries import load_queries
from sopr_rag.eval.run import write_results
from sopr_rag.eval.utility import open_backend

log = get_logger("sopr_rag.eval")


@exits_2_on_error
def rejudge(argv: list[str]) -> int:
    ap = verb_parser("rejudge", "Grade the saved answers of an `evaluate --utility` results file again with\n"
                                "the current judge; retrieval metrics are copied, not re-run.", config=False,
                     spec=EvalSpec, spec_required=True)
    ap.add_argument("results", help="results JSON written by `evaluate --utility`")
    ap.add_argument("--out", required=True, help="re-judged results JSON (markdown beside it)")
    args = parse_verb_args(ap, argv)
    spec = load_config(EvalSpec, args.spec, args.overrides)
    results = json.loads(Path(args.results).read_text(encoding="utf-8"))
    procs = load_procedures(spec.corpus)
    queries = {q.id: q for f in spec.queries for q in load_queries(f).queries}
    llm, judge = open_backend(spec.utility), make_judge(spec.utility.judge_max_new_tokens)
    stats = {"judged": 0, "judge_rejects": 0, "reject_reasons": []}
    for qset in results["query_sets"].values():
        for method, entry in qset["methods"].items():
            recs = [r for r in entry["per_query"] if "answer" in r]
            inputs = []
            for r in recs:
                q = queries[r["id"]]
                gold = procs.get(q.gold_docs[0])
                ref = "\n".join(f"{i}. {s.text}" for i, s in enumerate(gold.steps[:12], 1)) if gold else ""
                inputs.append({"question": q.query, "title": gold.title if gold else q.gold_docs[0],
                               "reference": ref or "\n".join(q.gold_steps), "answer": r["answer"]})
            for r, v in zip(recs, judge.run(llm, inputs)):
                for k in ("utility", "judge", "judge_error"):
                    r.pop(k, None)
                if v.ok:
                    r["utility"], r["judge"] = v.value.utility, v.value.model_dump()
                    stats["judged"] += 1
                else:
                    r["judge_error"] = v.error
                    stats["judge_rejects"] += 1
                    stats["reject_reasons"].append(v.error)
            per_query = entry["per_query"]
            qset["methods"][method] = {**breakdown(per_query), "per_query": per_query}
            log.info("re-judged %s: %d answers", method, len(recs))
    stats["reject_reasons"] = stats["reject_reasons"][:20]
    results["utility"] = {**results.get("utility", {}), **stats, "judge_prompt": PROMPT_VERSION,
                          "rejudged_from": args.results}
    results["command"] = command_line("rejudge", argv)
    write_results(results, args.out, Path(args.out).with_suffix(".md"))
    return 0
