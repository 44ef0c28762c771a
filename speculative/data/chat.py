"""Render a conversation with the target tokenizer's own chat template and mark assistant tokens.

Assistant spans are found in the rendered text, not guessed from token patterns: for assistant turn i,
the template rendering of messages[:i] with the generation prompt is a prefix of the full rendering, and
the rendering of messages[:i+1] ends right after that turn's end-of-turn marker. The span between the
two (trailing whitespace after the marker dropped) is the assistant's content plus its end-of-turn
token. Templates that rewrite earlier turns (e.g. reasoning stripping) break the prefix property; then
the content string itself is located and the end-of-turn marker that follows it is included.
Token i is in the loss iff its first character lies in a span (fast-tokenizer offsets).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import torch


class RenderError(ValueError):
    """A conversation that cannot be rendered or masked (counted and skipped by the dataset)."""


@dataclass
class Rendered:
    text: str
    input_ids: torch.Tensor  # [T] int64
    loss_mask: torch.Tensor  # [T] bool, True on assistant tokens (incl. end-of-turn)
    spans: list[tuple[int, int]]  # character spans of the assistant turns in `text`


def _render(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def end_of_turn_marker(tokenizer: Any) -> str:
    """The string a template closes an assistant turn with (ChatML's <|im_end|>, else eos)."""
    for marker in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>"):
        tid = tokenizer.convert_tokens_to_ids(marker)  # get_vocab() would copy the whole vocab per call
        if tid is not None and tid != tokenizer.unk_token_id:
            return marker
    return tokenizer.eos_token or ""


def assistant_spans(tokenizer: Any, messages: list[dict[str, str]], text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    eot = end_of_turn_marker(tokenizer)
    cursor = 0
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], add_generation_prompt=True)
        through = _render(tokenizer, messages[: i + 1], add_generation_prompt=False).rstrip()
        if text.startswith(before) and text.startswith(through) and len(through) > len(before) >= cursor:
            start, end = len(before), len(through)
        else:  # fallback: find the content after the previous span, extend over the end-of-turn marker
            content = m["content"].strip()
            start = text.find(content, cursor) if content else -1
            if start < 0:
                raise RenderError(f"assistant turn {i} not found in the rendered conversation")
            end = start + len(content)
            rest = text[end:]
            if eot and rest.lstrip(" \t\n").startswith(eot):
                end += len(rest) - len(rest.lstrip(" \t\n")) + len(eot)
        spans.append((start, end))
        cursor = end
    return spans


# No token of these tokenizers spans more than this many characters, so a prefix of the conversation
# holding CHARS_PER_TOKEN_BOUND * max_length characters already renders to >= max_length tokens.
CHARS_PER_TOKEN_BOUND = 16


def trim_for_length(messages: list[dict[str, str]], max_length: int) -> list[dict[str, str]]:
    """Drop whole trailing messages that cannot reach the first `max_length` tokens (long ShareGPT
    threads would otherwise be rendered and tokenized in full only to be cut)."""
    budget = CHARS_PER_TOKEN_BOUND * max_length
    total = 0
    for i, m in enumerate(messages):
        total += len(m["content"])
        if total >= budget:
            kept = messages[: i + 1]
            return kept if any(k["role"] == "assistant" for k in kept) else messages
    return messages


def truncation_start(loss_mask: torch.Tensor, max_length: int, min_loss_tokens: int = 2) -> int:
    """Start of the kept window: the head, unless it holds fewer than `min_loss_tokens` assistant tokens
    (a long prompt); then the window that ends at the last assistant token, so the example is not lost."""
    if int(loss_mask[:max_length].sum()) >= min_loss_tokens:
        return 0
    hits = torch.nonzero(loss_mask)[:, 0]
    return 0 if not len(hits) else max(0, int(hits[-1]) + 1 - max_length)


def render_conversation(tokenizer: Any, messages: list[dict[str, str]], *, max_length: int | None = None,
                        last_turn_only: bool = False) -> Rendered:
    """Template-render `messages`, tokenize, and mask assistant tokens (optionally only the last turn)."""
    if max_length is not None:
        messages = trim_for_length(messages, max_length)
    text = _render(tokenizer, messages, add_generation_prompt=False)
    spans = assistant_spans(tokenizer, messages, text)
    if not spans:
        raise RenderError("no assistant turn")
    if last_turn_only:
        spans = spans[-1:]
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = torch.tensor(enc["input_ids"], dtype=torch.int64)
    starts = torch.tensor([s for s, _ in enc["offset_mapping"]], dtype=torch.int64)
    mask = torch.zeros(len(ids), dtype=torch.bool)
    for s, e in spans:
        mask |= (starts >= s) & (starts < e)
    if max_length is not None and len(ids) > max_length:
        start = truncation_start(mask, max_length)
        ids, mask = ids[start:start + max_length], mask[start:start + max_length]
    return Rendered(text=text, input_ids=ids, loss_mask=mask, spans=spans)


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Hash of what rendering depends on: the tokenizer's vocabulary and its chat template (a cache key).
    An object that already carries one (offline shards' StoredTokenizer) gives its own."""
    if isinstance(getattr(tokenizer, "fingerprint", None), str):
        return tokenizer.fingerprint
    vocab = sorted(tokenizer.get_vocab().items())
    blob = json.dumps([vocab, getattr(tokenizer, "chat_template", None)], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
