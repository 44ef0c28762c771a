"""Verb `python -m sopr_rag build-bench`: questions with gold labels from an SOP corpus, by LLM agents.

    python -m sopr_rag build-bench --corpus DIR --out bench.jsonl [--backend hf|vllm|openai] \\
        [--model NAME] [--base-url URL] [--max-docs N] [--spec BENCH_SPEC.yaml] [key=value ...]

--spec is a YAML `BenchSpec`; `key=value` overrides set its keys (e.g. bench.max_docs=4), the flags
override both. Writes bench.jsonl (the `evaluate` input schema), bench.rejects.jsonl (stage + reason
per reject) and bench.stats.json (yield per stage).
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import Field

from runtime.config import StrictModel, load_config
from runtime.llm import make_backend
from sopr_rag.bench.workflow import BenchBuilder, BenchConfig, write_outputs
from sopr_rag.cli import exits_2_on_error, parse_verb_args, verb_parser
from sopr_rag.ingest.loader import IngestReport, list_documents, load_procedure


class BenchSpec(StrictModel):
    corpus: str | None = None
    out: str | None = None
    backend: Literal["hf", "vllm", "openai"] = "hf"
    model: str | None = None
    base_url: str | None = None
    bench: BenchConfig = Field(default_factory=BenchConfig)


def load_procedures(corpus: str) -> dict:
    report = IngestReport()
    procs = {d: p for d, path in list_documents(corpus).items() if (p := load_procedure(d, path, report))}
    if not procs:
        raise ValueError(f"no readable SOPs in {corpus} (skipped: {report.skipped})")
    return procs


@exits_2_on_error
def build_bench(argv: list[str]) -> int:
    ap = verb_parser("build-bench", "Multi-agent benchmark construction over an SOP corpus.", config=False,
                     spec=BenchSpec)
    ap.add_argument("--corpus")
    ap.add_argument("--out", help="questions JSONL (rejects and stats are written beside it)")
    ap.add_argument("--backend", choices=("hf", "vllm", "openai"))
    ap.add_argument("--model", help="asset name / HF folder (hf, vllm) or served model name (openai)")
    ap.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    ap.add_argument("--max-docs", type=int)
    args = parse_verb_args(ap, argv)
    spec = load_config(BenchSpec, args.spec, args.overrides)
    for key in ("corpus", "out", "backend", "model", "base_url"):
        if getattr(args, key):
            setattr(spec, key, getattr(args, key))
    if args.max_docs:
        spec.bench.max_docs = args.max_docs
    if not spec.corpus or not spec.out:
        raise ValueError("build-bench needs --corpus and --out (or a --spec naming them)")
    kw = {"base_url": spec.base_url} if spec.backend == "openai" and spec.base_url else {}
    llm = make_backend(spec.backend, model=spec.model, **kw)
    builder = BenchBuilder(load_procedures(spec.corpus), llm, spec.bench)
    stats = write_outputs(builder.run(), builder, spec.out)
    print(json.dumps(stats, indent=2))
    return 0
