"""Verbs `index`, `search`, `ask` of `python -m sopr_rag`, and the command line every sopr_rag verb shares.

    python -m sopr_rag index CORPUS_DIR --out INDEX_DIR [--config FILE] [key=value ...]   (re-run = update)
    python -m sopr_rag search --index INDEX_DIR --queries Q.jsonl --top-k 10 --out R.jsonl [--method soprag]
    python -m sopr_rag ask --index INDEX_DIR "pump B is cavitating after the filter swap, what next?"

Every verb takes `--config FILE` (a SopragConfig YAML) and dotted `key=value` overrides, anywhere on the
line after the verb's own positional arguments; `<verb> --help` lists every config key with its default.
The verb list lives in sopr_rag/__main__.py. The index, the pipeline and the method registry pull in
torch and faiss; the verbs import them when they run, so `<verb> --help` stays fast.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from runtime.config import config_keys, load_config
from runtime.llm import make_backend
from runtime.logging import get_logger
from runtime.paths import cache_dir
from sopr_rag.cards.glossary import make_glossary_builder
from sopr_rag.cards.llm import make_card_builder
from sopr_rag.config import SopragConfig
from sopr_rag.ingest.llm_extract import LLMExtractor
from sopr_rag.ingest.loader import IngestLimits

log = get_logger("sopr_rag.cli")
PROG = "python -m sopr_rag"
MAX_TOP_K = 1000


# ----------------------------------------------------------------------------- the shared command line
def _keys_section(title: str, cls: type[BaseModel]) -> str:
    keys = config_keys(cls)
    width = max((len(k) for k, _ in keys), default=0)
    return title + ":\n" + "\n".join(f"  {k:<{width}}  {d}" for k, d in keys)


class VerbParser(argparse.ArgumentParser):
    overrides_help = ""  # what the verb's key=value overrides set (see verb_parser)


def verb_parser(verb: str, description: str, *, config: bool = True, spec: type[BaseModel] | None = None,
                spec_required: bool = False) -> VerbParser:
    """A verb's parser: `--config` (SopragConfig) unless `config=False`, `--spec` when the verb also reads a
    job spec (EvalSpec, BenchSpec); the help lists every key of both. The verb adds its own flags and
    positional arguments, then calls `parse_verb_args`, which adds the `key=value` overrides last."""
    sections = []
    if config:
        sections.append(_keys_section("config keys (SopragConfig: --config FILE, then key=value), default",
                                      SopragConfig))
    if spec is not None:
        sections.append(_keys_section(f"spec keys ({spec.__name__}: --spec FILE, then key=value), default", spec))
    ap = VerbParser(prog=f"{PROG} {verb}", description=description, epilog="\n\n".join(sections),
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    sets = [name for name, on in (("SopragConfig", config), (spec.__name__ if spec else "", spec)) if on]
    ap.overrides_help = (f"dotted overrides of the {' or the '.join(sets)} keys listed below, applied after the file"
                         + (f"; one whose first key is an {spec.__name__} field sets the spec" if config and spec
                            else ""))
    if config:
        ap.add_argument("--config", help="SOPRAG YAML config (default: the built-in best settings)")
    if spec is not None:
        ap.add_argument("--spec", required=spec_required, help=f"{spec.__name__} YAML")
    return ap


def parse_verb_args(ap: VerbParser, argv: list[str]) -> argparse.Namespace:
    ap.add_argument("overrides", nargs="*", metavar="key=value", help=ap.overrides_help)
    return ap.parse_intermixed_args(argv)  # flags and overrides may come in any order


def split_overrides(overrides: list[str], spec: type[BaseModel]) -> tuple[list[str], list[str]]:
    """(SopragConfig overrides, `spec` overrides): an override goes to the spec when its first key is one of
    the spec's fields (the two classes share no top-level key; a test checks it)."""
    mine = [o for o in overrides if o.split("=", 1)[0].split(".", 1)[0].strip() in spec.model_fields]
    return [o for o in overrides if o not in mine], mine


def settings(args: argparse.Namespace, overrides: list[str] | None = None) -> SopragConfig:
    return load_config(SopragConfig, args.config, args.overrides if overrides is None else overrides)


def command_line(verb: str, argv: list[str]) -> str:
    """How a result file records the command that wrote it."""
    return f"{PROG} {verb} {shlex.join(argv)}".rstrip()


def exits_2_on_error(fn: Callable[[list[str]], int]) -> Callable[[list[str] | None], int]:
    """A verb: a missing file or a bad value (ConfigError included) is one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def verb(argv: list[str] | None = None) -> int:
        try:
            return int(fn(list(argv or [])) or 0)
        except (FileNotFoundError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

    return verb


def top_k_arg(raw: str) -> int:
    """argparse type for --top-k: an integer in [1, MAX_TOP_K] (-1 would silently drop the last hit)."""
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer in [1, {MAX_TOP_K}], got '{raw}'") from None
    if not 1 <= value <= MAX_TOP_K:
        raise argparse.ArgumentTypeError(f"must be in [1, {MAX_TOP_K}], got {value}")
    return value


# ----------------------------------------------------------------------------- index
@exits_2_on_error
def index(argv: list[str]) -> int:
    ap = verb_parser("index", "Build or incrementally update an index from a corpus folder.")
    ap.add_argument("corpus", help="SOP folder (Markdown / text files)")
    ap.add_argument("--out", required=True, help="index folder; re-running updates it incrementally")
    ap.add_argument("--llm-extract", action="store_true",
                    help="also extract triggers/causes/entities with the LLM (gate.backend/model settings)")
    args = parse_verb_args(ap, argv)
    cfg = settings(args)
    from sopr_rag.index import SopIndex  # torch, faiss

    extractor = None
    if args.llm_extract:  # optional: enrich rule-based parsing with LLM-extracted fields (cached per hash)
        gate = cfg.gate
        kw = {"base_url": gate.base_url} if gate.backend == "openai" and gate.base_url else {}
        extractor = LLMExtractor(make_backend(gate.backend, model=gate.model, **kw),
                                 str(cache_dir("sopr_rag") / "extract_cache.jsonl"))
    cards = make_card_builder(cfg.cards)  # cards.mode=llm: LLM Procedure Cards (cached)
    _, report = SopIndex.build(args.corpus, args.out, extractor=extractor, card_builder=cards,
                               limits=IngestLimits.of(cfg.ingest),
                               glossary_builder=make_glossary_builder(cfg.cards, cards))  # cards.glossary=true
    print(json.dumps({"added": len(report.added), "changed": len(report.changed), "removed": len(report.removed),
                      "repaired": report.repaired, "skipped": report.skipped, "telemetry": report.telemetry},
                     indent=2))
    return 0


# ----------------------------------------------------------------------------- search
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


@exits_2_on_error
def search(argv: list[str]) -> int:
    ap = verb_parser("search", "Batch search: queries JSONL -> results JSONL (one line per query).")
    ap.add_argument("--index", required=True, help="index folder")
    ap.add_argument("--queries", required=True, help="JSONL, one {\"id\", \"query\"} per line")
    ap.add_argument("--top-k", type=top_k_arg, default=10, help=f"hits per query, 1..{MAX_TOP_K}")
    ap.add_argument("--out", required=True, help="results JSONL")
    ap.add_argument("--method", default="soprag", help="soprag (default) or a baseline: bm25|bm25-chunk|dense|hybrid|"
                                                       "graph (sopr_rag/retrievers.py)")
    args = parse_verb_args(ap, argv)
    cfg = settings(args)
    from sopr_rag.index import SopIndex  # torch, faiss
    from sopr_rag.retrievers import check_method, make_retriever

    check_method(args.method)
    retriever = make_retriever(args.method, SopIndex.load(args.index), cfg)
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


# ----------------------------------------------------------------------------- ask
@exits_2_on_error
def ask(argv: list[str]) -> int:
    ap = verb_parser("ask", "Answer one question with the cited steps of the best procedures;\n"
                            "answer.generate=true also writes an LLM answer grounded in them.")
    ap.add_argument("question")
    ap.add_argument("--index", required=True, help="index folder")
    ap.add_argument("--top-k", type=top_k_arg, default=3, help=f"procedures, 1..{MAX_TOP_K}")
    ap.add_argument("--json", action="store_true", help="print the answer as JSON")
    args = parse_verb_args(ap, argv)
    cfg = settings(args)
    if not args.question.strip():
        raise ValueError("the question must contain a non-space character")
    from sopr_rag.index import SopIndex  # torch, faiss
    from sopr_rag.pipeline import SopragRetriever

    answer = SopragRetriever(SopIndex.load(args.index), cfg).answer(args.question, args.top_k)
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
