"""Evaluation prompts from the embedded assets, as multi-turn user-message lists.

- mtbench:  80 questions, both turns (turn 2 is asked after the model's own turn-1 answer).
- humaneval: 164 problems, the function stub as the user message.
- sharegpt: held-out conversations: taken from the END of the asset, after skipping the first
  `train_window` raw records (the trainer reads at most 2 * limit + 16 raw records from the start),
  first user turn only.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.assets import load_dataset

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
