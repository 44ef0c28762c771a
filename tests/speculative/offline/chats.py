"""A tiny chat JSONL for offline/parallel tests (varied lengths so batches get padding)."""

from __future__ import annotations

import json
from pathlib import Path

TOPICS = ["the moon", "prime numbers", "tea", "rivers", "chess", "bread", "volcanoes", "owls", "rain", "maps"]


def write_chats(path: Path, n: int = 8) -> Path:
    with open(path, "w") as fh:
        for i in range(n):
            q = f"Tell me something about {TOPICS[i % len(TOPICS)]}."
            a = " ".join([f"Fact {j} about {TOPICS[i % len(TOPICS)]} is short." for j in range(1 + i % 3)])
            fh.write(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n")
    return path
