"""Gate output cache: append-only JSONL keyed by (gate identity, query), loaded once per process.

Append-only with a flush per record: a crash loses at most the line being written, and the
file never needs rewriting. The last record for a key wins.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from runtime.logging import JsonlWriter, get_logger

log = get_logger("sopr_rag.gate")


def cache_key(identity: str, query: str) -> str:
    return hashlib.sha256(f"{identity}\x00{query.strip()}".encode()).hexdigest()[:32]


class GateCache:
    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self._mem: dict[str, dict] = {}
        self._writer: JsonlWriter | None = None
        if self.path and self.path.is_file():
            for n, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
                try:
                    rec = json.loads(line)
                    self._mem[rec["key"]] = rec["value"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    log.warning("gate cache %s line %d unreadable: skipped", self.path, n)

    def __len__(self) -> int:
        return len(self._mem)

    def get(self, key: str) -> dict | None:
        return self._mem.get(key)

    def put(self, key: str, value: dict) -> None:
        self._mem[key] = value
        if self.path is not None:
            if self._writer is None:
                self._writer = JsonlWriter(self.path)
            self._writer.write({"key": key, "value": value})

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
