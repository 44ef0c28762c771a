"""Known-item queries for a runbook corpus: the plain-question check of `make sopr_rag-eval-openshift`.

    python experiments/configs/sopr_rag/known_items.py CORPUS OUT.jsonl [--every 4]

Query = the first sentence of the Meaning section of every `every`-th runbook (sorted paths, `helpers/`
pages left out), with the runbook's own file name replaced by "this" and backticks dropped; gold = that
runbook. These are questions in the runbook's own words, the ground where BM25 is strongest: SOPRAG should
not lose to it there (issue 17). Written to OUT (not committed: the text is the corpus's, read from ../shared).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

MEANING = re.compile(r"^##\s*Meaning\s*\n(.*?)(?=^##\s)", re.S | re.M)


def known_items(corpus: Path, every: int = 4) -> list[dict]:
    files = sorted(p for p in corpus.rglob("*.md") if "helpers" not in p.relative_to(corpus).parts)
    out = []
    for i, path in enumerate(files):
        if i % every:
            continue
        m = MEANING.search(path.read_text(encoding="utf-8"))
        if not m:
            continue
        body = " ".join(re.sub(r"```.*?```", " ", m.group(1), flags=re.S).split())
        first = re.split(r"(?<=[.!?])\s", body)[0].replace(path.stem, "this").replace("`", "")
        if len(first.split()) >= 6:
            out.append({"id": f"known-{len(out) + 1:03d}", "query": first,
                        "gold_docs": [path.relative_to(corpus).as_posix()], "difficulty": "easy"})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--every", type=int, default=4)
    args = ap.parse_args()
    rows = known_items(args.corpus, args.every)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} known-item queries -> {args.out}")


if __name__ == "__main__":
    main()
