"""`python -m sopr_rag {index,search,ask,serve}`; eval/bench subcommands plug in via register(subparsers).

    python -m sopr_rag index CORPUS_DIR --out INDEX_DIR          (re-run = incremental update)
    python -m sopr_rag search --index INDEX_DIR --queries Q.jsonl --top-k 10 --out R.jsonl [--method soprag]
    python -m sopr_rag ask --index INDEX_DIR "pump B is cavitating after the filter swap, what next?"
    python -m sopr_rag serve --index INDEX_DIR --port 8080
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from runtime.config import ConfigError, load_config
from runtime.logging import get_logger
from sopr_rag.config import SopragConfig

log = get_logger("sopr_rag.cli")
PLUGIN_MODULES = ("sopr_rag.eval.cli", "sopr_rag.bench.cli")


def load_settings(args: argparse.Namespace) -> SopragConfig:
    return load_config(SopragConfig, args.config, args.set)


def make_retriever(method: str, index: Any, cfg: SopragConfig) -> Any:
    """SOPRAG itself or any baseline registered in sopr_rag.baselines."""
    if method == "soprag":
        from sopr_rag.pipeline import SopragRetriever

        return SopragRetriever(index, cfg)
    from sopr_rag.baselines import get_retriever

    return get_retriever(method, index)


def cmd_index(args: argparse.Namespace) -> int:
    from sopr_rag.index import SopIndex

    extractor = None
    if args.llm_extract:  # optional: enrich rule-based parsing with LLM-extracted fields (cached per hash)
        from runtime.llm import make_backend
        from runtime.paths import cache_dir
        from sopr_rag.ingest.llm_extract import LLMExtractor

        gate = load_settings(args).gate
        kw = {"base_url": gate.base_url} if gate.backend == "openai" and gate.base_url else {}
        extractor = LLMExtractor(make_backend(gate.backend, model=gate.model, **kw),
                                 str(cache_dir("sopr_rag") / "extract_cache.jsonl"))
    from sopr_rag.cards.llm import make_card_builder  # --set cards.mode=llm: LLM Procedure Cards (cached)
    from sopr_rag.ingest.loader import IngestLimits

    settings = load_settings(args)
    cards = make_card_builder(settings.cards)
    _, report = SopIndex.build(args.corpus, args.out, extractor=extractor, card_builder=cards,
                               limits=IngestLimits.of(settings.ingest))
    print(json.dumps({"added": len(report.added), "changed": len(report.changed), "removed": len(report.removed),
                      "repaired": report.repaired, "skipped": report.skipped, "telemetry": report.telemetry},
                     indent=2))
    return 0


MAX_TOP_K = 1000


def top_k_arg(raw: str) -> int:
    """argparse type for --top-k: an integer in [1, MAX_TOP_K] (-1 would silently drop the last hit)."""
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer in [1, {MAX_TOP_K}], got '{raw}'") from None
    if not 1 <= value <= MAX_TOP_K:
        raise argparse.ArgumentTypeError(f"must be in [1, {MAX_TOP_K}], got {value}")
    return value


def _query_record(rec: object) -> dict:
    """A query line: an object with a string or integer `id` and a non-blank string `query`."""
    if not isinstance(rec, dict):
        raise ValueError("not a JSON object")
    qid, query = rec.get("id"), rec.get("query")
    if isinstance(qid, bool) or not isinstance(qid, (str, int)):
        raise ValueError(f"'id' must be a string or an integer, got {type(qid).__name__}")
    if not isinstance(query, str) or not query.strip():  # null must not be searched as the text "None"
        raise ValueError(f"'query' must be a non-empty string, got {type(query).__name__}")
    return rec


def read_queries(path: str) -> tuple[list[dict], int]:
    """Query lines with at least `id` and `query`; bad lines are counted and skipped, not fatal."""
    good, bad = [], 0
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                good.append(_query_record(json.loads(line)))
            except (json.JSONDecodeError, ValueError) as err:
                bad += 1
                log.warning("%s line %d skipped: %s", path, n, err)
    return good, bad


def cmd_search(args: argparse.Namespace) -> int:
    from sopr_rag.index import SopIndex

    cfg = load_settings(args)
    index = SopIndex.load(args.index)
    retriever = make_retriever(args.method, index, cfg)
    queries, bad = read_queries(args.queries)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")  # results appear whole or not at all
    latencies = []
    with open(tmp, "w", encoding="utf-8") as fh:
        for q in queries:
            t0 = time.perf_counter()
            result = retriever.search(str(q["query"]), args.top_k)
            latencies.append((time.perf_counter() - t0) * 1000)
            fh.write(json.dumps(result.to_record(q["id"])) + "\n")
    os.replace(tmp, out)
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else 0.0
    print(json.dumps({"queries": len(queries), "skipped_lines": bad, "method": args.method, "out": str(out),
                      "p95_ms": round(p95, 1)}))
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from sopr_rag.index import SopIndex
    from sopr_rag.pipeline import SopragRetriever

    cfg = load_settings(args)
    if not args.question.strip():
        raise ValueError("the question must contain a non-space character")
    answer = SopragRetriever(SopIndex.load(args.index), cfg).answer(args.question, args.top_k, args.generate)
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    if not answer["procedures"]:
        print("No matching procedure found.")
        return 1
    for i, p in enumerate(answer["procedures"], 1):
        print(f"{i}. {p['title']}  [{p['doc_id']}]  score={p['score']:.3f}")
    print("\nRelevant steps:")
    for s in answer["steps"]:
        print(f"  [{s['doc_id']}#{s['number']}] {s['text']}")
    if answer["answer"]:
        print("\nAnswer (generated from the steps above):\n" + answer["answer"])
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from sopr_rag.api import create_app

    uvicorn.run(create_app(args.index, load_settings(args)), host=args.host, port=args.port)
    return 0


def _add_settings(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="SOPRAG YAML config (default: built-in best settings)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, repeatable")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sopr_rag", description="SOPRAG: retrieval over SOPs")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("index", help="build or incrementally update an index from a corpus folder")
    p.add_argument("corpus")
    p.add_argument("--out", required=True)
    p.add_argument("--llm-extract", action="store_true",
                   help="also extract triggers/causes/entities with the LLM (gate.backend/model settings)")
    _add_settings(p)
    p.set_defaults(func=cmd_index)
    p = sub.add_parser("search", help="batch search: queries JSONL -> results JSONL")
    p.add_argument("--index", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--top-k", type=top_k_arg, default=10, help=f"hits per query, 1..{MAX_TOP_K}")
    p.add_argument("--out", required=True)
    p.add_argument("--method", default="soprag", help="soprag (default) or a baseline: bm25|dense|hybrid|graph")
    _add_settings(p)
    p.set_defaults(func=cmd_search)
    p = sub.add_parser("ask", help="answer one question with cited steps")
    p.add_argument("question")
    p.add_argument("--index", required=True)
    p.add_argument("--top-k", type=top_k_arg, default=3, help=f"procedures, 1..{MAX_TOP_K}")
    p.add_argument("--generate", action="store_true", help="also write an LLM answer grounded in the steps")
    p.add_argument("--json", action="store_true")
    _add_settings(p)
    p.set_defaults(func=cmd_ask)
    p = sub.add_parser("serve", help="HTTP API (FastAPI) over one index")
    p.add_argument("--index", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    _add_settings(p)
    p.set_defaults(func=cmd_serve)
    for name in PLUGIN_MODULES:  # the eval/bench owners add their subcommands without editing this file
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name and name.startswith(err.name):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
