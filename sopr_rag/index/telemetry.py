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
    llm_calls: int = 0  # rule-based parsing makes none; LLM cards and LLM extraction count here
    llm_tokens: int = 0  # prompt + completion
    llm_seconds: float = 0.0  # inside generate()
    llm_cache_hits: int = 0  # documents whose LLM card came from the cache (no call)
    llm_repairs: int = 0  # replies that failed validation and got the repair turn
    llm_failures: int = 0  # documents left with rule-built cards only
    texts_embedded: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    glossary: dict = field(default_factory=dict)  # the component glossary's LLM stats (cards.llm.CardStats)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0

    def add_llm(self, stats) -> None:
        """Add a cards.llm.CardStats."""
        self.llm_calls += stats.llm_calls
        self.llm_tokens += stats.prompt_tokens + stats.completion_tokens
        self.llm_seconds += stats.llm_seconds
        self.llm_cache_hits += stats.cache_hits
        self.llm_repairs += stats.repairs
        self.llm_failures += stats.failures

    def add_glossary(self, stats) -> None:
        """The glossary's calls, tokens and seconds count in the totals; all of its stats under `glossary`."""
        self.llm_calls += stats.llm_calls
        self.llm_tokens += stats.prompt_tokens + stats.completion_tokens
        self.llm_seconds += stats.llm_seconds
        self.glossary = stats.to_dict()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["seconds"] = {k: round(v, 4) for k, v in self.seconds.items()}
        d["llm_seconds"] = round(self.llm_seconds, 3)
        return d
