"""Topic subsets of a chat corpus: the code conversations of ShareGPT, for drafts of code targets.

A draft learns what its target says on the traffic it will serve; a code target (Qwen2.5-Coder) served on code
needs code prompts, and the offline assets hold no code corpus besides HumanEval (the evaluation). ShareGPT
does: a conversation is "code" when its first assistant reply holds code (a fenced block, or at least
`MIN_CODE_LINES` lines that open as code does). Conversations that define a HumanEval entry point
(`def <entry_point>(`) are dropped and counted (`eval_overlap`), so the code draft never trains on its benchmark.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

TOPICS = ("code",)
MIN_CODE_LINES = 3
FENCE = "```"
# line openings of Python, JS/TS, C/C++/Java/C#, Go/Rust, SQL, shell, HTML/PHP
CODE_LINE = re.compile(
    r"^\s*(?:def \w+\(|class \w+|import \w|from [\w.]+ import |#include|function\b|const \w+ ?=|let \w+ ?=|"
    r"var \w+ ?=|public |private |static |func \w+\(|fn \w+\(|package \w|using \w|SELECT |INSERT INTO |"
    r"CREATE TABLE |\$ \w|<\?php|<div|<html|for ?\(|while ?\(|if ?\(.*\) ?\{|return [^.]*;|console\.log\(|"
    r"print\(|System\.out\.)", re.MULTILINE)


def first_reply(messages: list[dict[str, str]]) -> str:
    return next((m["content"] for m in messages if m["role"] == "assistant"), "")


def is_code_conversation(messages: list[dict[str, str]]) -> bool:
    """The first assistant reply holds code (fenced, or >= MIN_CODE_LINES code-looking lines)."""
    reply = first_reply(messages)
    return FENCE in reply or len(CODE_LINE.findall(reply)) >= MIN_CODE_LINES


def eval_overlap(messages: list[dict[str, str]], entry_points: Iterable[str]) -> bool:
    """The conversation defines one of the benchmark's functions (`def name(`)."""
    text = "\n".join(m["content"] for m in messages)
    return any(f"def {name}(" in text for name in entry_points)


def humaneval_entry_points() -> list[str]:
    from runtime.assets import load_dataset

    return [p["entry_point"] for p in load_dataset("humaneval")]
