"""`python -m sopr_rag.demo`: index the embedded fixture SOP corpus, answer three operator questions.

Runs on CPU in about a minute (MiniLM embeddings; no LLM unless --generate).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from runtime.paths import repo_root
from sopr_rag.index import SopIndex
from sopr_rag.pipeline import SopragRetriever

CORPUS = repo_root() / "tests" / "fixtures" / "sop_corpus"
QUESTIONS = [
    "pump B is cavitating after the filter swap, what next?",
    "mains power is gone and the standby generator won't start, batteries are counting down. what now?",
    "why did the air handler stop with its outside damper shut on a freezing morning?",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", default=str(CORPUS))
    parser.add_argument("--generate", action="store_true", help="also generate answers with SmolLM2")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        index, report = SopIndex.build(args.corpus, Path(tmp) / "index")
        print(f"indexed {len(index)} SOPs ({len(report.skipped)} skipped) in "
              f"{sum(report.telemetry['seconds'].values()):.1f}s")
        retriever = SopragRetriever(index)
        for question in QUESTIONS:
            out = retriever.answer(question, top_k=3, generate=args.generate)
            weights = ", ".join(f"{k}={v:.2f}" for k, v in out["expert_weights"].items())
            print(f"\nQ: {question}\n   gate: {weights}")
            for p in out["procedures"]:
                print(f"   {p['score']:.3f}  {p['doc_id']}")
            for s in out["steps"]:
                print(f"   [{s['doc_id']}#{s['number']}] {s['text']}")
            if out["answer"]:
                print(f"   answer: {out['answer']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
