"""Conversation records from the ShareGPT asset or any JSONL, validated; bad ones skipped and counted.

Accepted shapes per record: {"messages": [{"role", "content"}]} (OpenAI) or {"conversations":
[{"from", "value"}]} (ShareGPT). Skip reasons: invalid_json, not_utf8, no_messages, bad_message,
unknown_role, empty_content, no_assistant. Leading assistant turns (continuation chunks) are dropped;
the rest of the record is kept.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

ROLE_ALIASES = {"human": "user", "user": "user", "gpt": "assistant", "chatgpt": "assistant", "bard": "assistant",
                "bing": "assistant", "assistant": "assistant", "system": "system"}


class SkipCounter(Counter):
    """reason -> count of skipped records (one owner for the bookkeeping)."""

    def skip(self, reason: str) -> None:
        self[reason] += 1

    @property
    def total(self) -> int:
        return sum(self.values())


def normalize_record(rec: Any, skips: SkipCounter) -> list[dict[str, str]] | None:
    """The record's messages as [{"role", "content"}], or None (reason counted in `skips`)."""
    if not isinstance(rec, dict):
        skips.skip("no_messages")
        return None
    raw = rec.get("messages", rec.get("conversations"))
    if not isinstance(raw, list) or not raw:
        skips.skip("no_messages")
        return None
    msgs = []
    for turn in raw:
        if not isinstance(turn, dict):
            skips.skip("bad_message")
            return None
        role = turn.get("role", turn.get("from"))
        content = turn.get("content", turn.get("value"))
        if not isinstance(role, str) or not isinstance(content, str):
            skips.skip("bad_message")
            return None
        if role not in ROLE_ALIASES:
            skips.skip("unknown_role")
            return None
        try:
            content.encode("utf-8")  # lone surrogates from bad escapes
        except UnicodeEncodeError:
            skips.skip("not_utf8")
            return None
        if not content.strip():
            skips.skip("empty_content")
            return None
        msgs.append({"role": ROLE_ALIASES[role], "content": content})
    # ShareGPT continuation chunks open with the assistant: drop those leading turns (as SpecForge does),
    # not the whole record, and keep the rest if a user turn follows
    system = [m for m in msgs if m["role"] == "system"]
    body = [m for m in msgs if m["role"] != "system"]
    first_user = next((i for i, m in enumerate(body) if m["role"] == "user"), None)
    if first_user is None or not any(m["role"] == "assistant" for m in body[first_user:]):
        skips.skip("no_assistant")
        return None
    return msgs if not first_user else system + body[first_user:]


def read_jsonl_records(path: str | Path, skips: SkipCounter) -> Iterator[Any]:
    """Raw JSON objects from a JSONL file; undecodable or invalid lines are counted, not raised."""
    with open(path, "rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                skips.skip("not_utf8")
                continue
            try:
                yield json.loads(text)
            except json.JSONDecodeError:
                skips.skip("invalid_json")


def load_conversations(source: str, *, limit: int | None = None,
                       skips: SkipCounter | None = None) -> tuple[list[list[dict[str, str]]], SkipCounter]:
    """`source` is "sharegpt" (the asset), "sharegpt:<topic>" (its subset on a topic of
    speculative.data.topics, e.g. "sharegpt:code") or a JSONL path; returns (conversations, skip counts).
    A topic subset counts the rest as `off_topic` and benchmark overlaps as `eval_overlap`."""
    from speculative.data import topics

    skips = skips if skips is not None else SkipCounter()
    name, _, topic = source.partition(":")
    if name == "sharegpt" and (not topic or topic in topics.TOPICS):
        from runtime.assets import load_dataset

        # a topic keeps a fraction of the records: read them all, stop at `limit` kept
        raw: Iterable[Any] = load_dataset("sharegpt", limit=None if limit is None or topic else 2 * limit + 16)
    elif Path(source).is_file():
        raw, topic = read_jsonl_records(source, skips), ""
    else:
        raise FileNotFoundError(f"data source '{source}' is neither 'sharegpt', 'sharegpt:<topic>' (topics: "
                                f"{', '.join(topics.TOPICS)}) nor an existing JSONL file")
    entry_points = topics.humaneval_entry_points() if topic == "code" else []
    out = []
    for rec in raw:
        msgs = normalize_record(rec, skips)
        if msgs is None:
            continue
        if topic == "code" and not topics.is_code_conversation(msgs):
            skips.skip("off_topic")
            continue
        if topic == "code" and topics.eval_overlap(msgs, entry_points):
            skips.skip("eval_overlap")
            continue
        out.append(msgs)
        if limit is not None and len(out) >= limit:
            break
    return out, skips
