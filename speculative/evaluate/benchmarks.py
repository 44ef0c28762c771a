"""Evaluation prompts from the embedded assets, as multi-turn user-message lists.

- mtbench:  80 questions, both turns (turn 2 is asked after the model's own turn-1 answer).
- humaneval: 164 problems, the function stub as the user message.
- sharegpt: held-out conversations: taken from the END of the asset, after skipping the first
  `train_window` raw records (the trainer reads at most 2 * limit + 16 raw records from the start),
  first user turn only.
- a user's JSONL prompt file (`load_prompt_file`): one `{"id", "prompt"}` or `{"id", "turns": [...]}` per
  line, so tau and speed-up can be measured on one's own traffic; bad lines are skipped and counted.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from runtime.assets import load_dataset
from runtime.logging import get_logger

log = get_logger("speculative.evaluate.benchmarks")

BENCHMARKS = ("mtbench", "humaneval", "sharegpt")


@dataclass
class BenchItem:
    id: str
    turns: list[str]  # user messages, asked one after another


def mtbench(limit: int | None = None) -> list[BenchItem]:
    return [BenchItem(f"mtbench-{q['id']}", list(q["turns"])) for q in load_dataset("mtbench", limit=limit)]


def humaneval(limit: int | None = None) -> list[BenchItem]:
    return [BenchItem(p["id"], [f"Complete this Python function.\n\n```python\n{p['prompt']}```"])
            for p in load_dataset("humaneval", limit=limit)]


def sharegpt_heldout(limit: int | None = None, train_window: int = 4016) -> list[BenchItem]:
    records = load_dataset("sharegpt")
    if len(records) <= train_window:
        raise ValueError(f"the ShareGPT asset has {len(records)} records, all inside the training window "
                         f"({train_window}); nothing is held out")
    out: list[BenchItem] = []
    for rec in reversed(records[train_window:]):
        first = next((m["content"] for m in rec["messages"] if m["role"] == "user"), "")
        if first.strip() and len(first) < 4000:  # skip empty and huge pastes (eval prompts, not stress tests)
            out.append(BenchItem(f"sharegpt-{rec['id']}", [first]))
        if limit is not None and len(out) >= limit:
            break
    return out


def load_benchmark(name: str, limit: int | None = None, **kw) -> list[BenchItem]:
    loaders = {"mtbench": mtbench, "humaneval": humaneval, "sharegpt": sharegpt_heldout}
    if name not in loaders:
        raise KeyError(f"unknown benchmark '{name}'; choose from {BENCHMARKS}")
    return loaders[name](limit, **kw)


@dataclass
class PromptFile:
    items: list[BenchItem]
    lines: int = 0  # non-blank lines read
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> lines skipped for it
    examples: list[str] = field(default_factory=list)  # the first few skipped lines, "line N: reason"

    def summary(self) -> dict:
        return {"lines": self.lines, "items": len(self.items), "skipped": sum(self.skipped.values()),
                "skipped_by_reason": dict(self.skipped), "examples": list(self.examples)}


def _parse_line(line: str, seen: set[str]) -> BenchItem | str:
    """A BenchItem, or the reason the line is skipped."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        return "not JSON"
    if not isinstance(rec, dict):
        return "not a JSON object"
    rid = rec.get("id")
    if isinstance(rid, bool) or not isinstance(rid, (str, int)) or str(rid).strip() == "":
        return "missing or invalid id (a string or integer)"
    rid = str(rid)
    if rid in seen:
        return "duplicate id"
    if ("prompt" in rec) == ("turns" in rec):
        return "needs exactly one of 'prompt' or 'turns'"
    turns = [rec["prompt"]] if "prompt" in rec else rec["turns"]
    if not isinstance(turns, list) or not turns or not all(isinstance(t, str) and t.strip() for t in turns):
        return "empty prompt, or 'turns' not a non-empty list of non-empty strings"
    seen.add(rid)
    return BenchItem(rid, list(turns))


def load_prompt_file(path: str | Path, limit: int | None = None, max_examples: int = 5) -> PromptFile:
    """A user's JSONL prompts as a benchmark. Lines that cannot be used are skipped, counted by reason and
    logged (never silently dropped); a file with no usable line is an error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompt file not found: {path}")
    out, seen, skipped = PromptFile([]), set(), Counter()
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        out.lines += 1
        got = _parse_line(line, seen)
        if isinstance(got, str):
            skipped[got] += 1
            if len(out.examples) < max_examples:
                out.examples.append(f"line {no}: {got}")
        elif limit is None or len(out.items) < limit:
            out.items.append(got)
    out.skipped = dict(skipped)
    if skipped:
        log.warning("%s: skipped %d of %d lines (%s); e.g. %s", path, sum(skipped.values()), out.lines,
                    ", ".join(f"{n} {r}" for r, n in skipped.items()), "; ".join(out.examples))
    if not out.items:
        raise ValueError(f"{path}: no usable prompt among {out.lines} lines (skipped: {dict(skipped) or 'none'}); "
                         'each line must be {"id": ..., "prompt": "..."} or {"id": ..., "turns": ["...", ...]}')
    return out
