"""Gold query files: one JSON object per line, validated; bad lines are counted skips with reasons."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runtime.logging import get_logger

log = get_logger("sopr_rag.eval")


class GoldQuery(BaseModel):
    """Evaluation input (also what the benchmark builder writes). Unknown extra keys are kept."""

    model_config = ConfigDict(extra="allow")

    id: str | int
    query: str = Field(min_length=1)
    gold_docs: list[str] = Field(min_length=1)
    gold_steps: list[str] = Field(default_factory=list)
    intent: str | None = None  # "entity" | "causal" | "flow" (free text allowed, reported as given)
    difficulty: str | None = None  # "easy" | "hard"


@dataclass
class QuerySet:
    name: str
    queries: list[GoldQuery]
    skipped: dict[int, str] = field(default_factory=dict)  # line number -> reason


def load_queries(path: str | Path, name: str | None = None) -> QuerySet:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"query file not found: {path}")
    qs = QuerySet(name or path.name.removesuffix(".jsonl"), [])
    seen: set[str] = set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            q = GoldQuery.model_validate(json.loads(line))
            if str(q.id) in seen:
                raise ValueError(f"duplicate id {q.id!r}")
            seen.add(str(q.id))
            qs.queries.append(q)
        except (json.JSONDecodeError, ValidationError, ValueError) as err:
            reason = str(err).splitlines()[0] if not isinstance(err, ValidationError) else \
                "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            qs.skipped[n] = reason
            log.warning("%s line %d skipped: %s", path, n, reason)
    return qs
