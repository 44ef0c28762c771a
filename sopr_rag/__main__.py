"""SOPRAG: retrieval over standard operating procedures (index, search, serve, evaluate, benchmark)."""

from __future__ import annotations

from runtime.cli import Verb, run_verbs

VERBS = (
    Verb("index", "sopr_rag.cli:index", "build or incrementally update an index from a corpus folder"),
    Verb("search", "sopr_rag.cli:search", "batch search: queries JSONL -> results JSONL (--method soprag|baseline)"),
    Verb("ask", "sopr_rag.cli:ask", "answer one question with cited steps"),
    Verb("serve", "sopr_rag.api:serve", "HTTP API (FastAPI) over one index"),
    Verb("evaluate", "sopr_rag.eval.cli:evaluate", "retrieval / step / utility metrics for SOPRAG and the baselines"),
    Verb("rejudge", "sopr_rag.eval.rejudge:rejudge", "re-run only the LLM judge on the answers of saved results"),
    Verb("build-bench", "sopr_rag.bench.cli:build_bench", "multi-agent benchmark construction over an SOP corpus"),
    Verb("perf", "sopr_rag.perf:perf", "query latency of SOPRAG on a synthetic 400-document index"),
    Verb("demo", "sopr_rag.demo:demo", "index the fixture SOP corpus and answer three operator questions"),
)


def main(argv: list[str] | None = None) -> int:
    return run_verbs("python -m sopr_rag", __doc__, VERBS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
