"""Indexing telemetry: documents, LLM calls, tokens and seconds per stage, saved in the manifest."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field


@dataclass
class Telemetry:
    documents_seen: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: int = 0
    llm_calls: int = 0  # rule-based parsing makes none; LLM extraction would count here
    llm_tokens: int = 0
    texts_embedded: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["seconds"] = {k: round(v, 4) for k, v in self.seconds.items()}
        return d
