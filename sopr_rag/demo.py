"""Verb `python -m sopr_rag demo [--corpus DIR] [--config FILE] [key=value ...]`: index the embedded fixture SOP
corpus into a temporary folder and answer three operator questions.

Runs on CPU in about a minute (MiniLM embeddings; no LLM unless answer.generate=true, then SmolLM2).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from runtime.paths import repo_root
from sopr_rag.cards.glossary import make_glossary_builder
from sopr_rag.cards.llm import make_card_builder
from sopr_rag.cli import exits_2_on_error, parse_verb_args, settings, verb_parser
from sopr_rag.index import SopIndex
from sopr_rag.ingest.loader import IngestLimits
from sopr_rag.pipeline import SopragRetriever

CORPUS = repo_root() / "tests" / "fixtures" / "sop_corpus"
QUESTIONS = [
    "pump B is cavitating after the filter swap, what next?",
    "mains power is gone and the standby generator won't start, batteries are counting down. what now?",
    "why did the air handler stop with its outside damper shut on a freezing morning?",
]


@exits_2_on_error
def demo(argv: list[str]) -> int:
    ap = verb_parser("demo", "Index the fixture SOP corpus (in a temporary folder) and answer three operator\n"
                             "questions with cited steps; answer.generate=true adds an LLM answer (SmolLM2).")
    ap.add_argument("--corpus", default=str(CORPUS), help="SOP folder (default: the fixture corpus)")
    args = parse_verb_args(ap, argv)
    cfg = settings(args)
    with tempfile.TemporaryDirectory() as tmp:
        cards = make_card_builder(cfg.cards)
        index, report = SopIndex.build(args.corpus, Path(tmp) / "index", card_builder=cards,
                                       limits=IngestLimits.of(cfg.ingest),
                                       glossary_builder=make_glossary_builder(cfg.cards, cards))
        print(f"indexed {len(index)} SOPs ({len(report.skipped)} skipped) in "
              f"{sum(report.telemetry['seconds'].values()):.1f}s")
        retriever = SopragRetriever(index, cfg)
        for question in QUESTIONS:
            out = retriever.answer(question, top_k=3)
            weights = ", ".join(f"{k}={v:.2f}" for k, v in out["expert_weights"].items())
            print(f"\nQ: {question}\n   gate: {weights}")
            for p in out["procedures"]:
                print(f"   {p['score']:.3f}  {p['doc_id']}")
            for s in out["steps"]:
                print(f"   [{s['doc_id']}#{s['number']}] {s['text']}")
            if out["answer"]:
                print(f"   answer: {out['answer']}")
    return 0
