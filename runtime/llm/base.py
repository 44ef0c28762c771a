"""The one LLM interface used by speculative/, sopr_rag/ and sparse_align/.

A prompt is either raw text or a list of chat messages ({"role", "content"}); chat prompts are
rendered with the model's own chat template (local backends) or sent to /chat/completions (HTTP).
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Message = dict[str, str]
Prompt = str | list[Message]


class BackendCapabilityError(NotImplementedError):
    """The backend cannot do this (e.g. hidden states over HTTP)."""


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings shared by all backends. temperature 0 means greedy.

    `json_schema`: constrain the output to JSON matching this schema (structured output / guided
    decoding): honoured by the vllm backend (xgrammar) and the openai backend (`response_format`); the hf
    backend ignores it (logged once). Pass a dict or JSON text; it is kept as canonical JSON text so the
    params stay hashable (`schema()` gives the dict back).
    """

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    json_schema: str | None = None

    def __post_init__(self) -> None:
        if self.json_schema is not None:
            schema = json.loads(self.json_schema) if isinstance(self.json_schema, str) else self.json_schema
            if not isinstance(schema, dict):
                raise ValueError("json_schema must be a JSON schema object (a dict or its JSON text)")
            object.__setattr__(self, "json_schema", json.dumps(schema, sort_keys=True))
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.temperature < 0 or not math.isfinite(self.temperature):
            raise ValueError("temperature must be a finite number >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.top_k < 0:
            raise ValueError("top_k must be >= 0 (0 = off)")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def schema(self) -> dict[str, Any] | None:
        """`json_schema` as a dict (None when the output is unconstrained)."""
        return json.loads(self.json_schema) if self.json_schema is not None else None


@dataclass
class Generation:
    text: str
    token_ids: list[int] = field(default_factory=list)
    finish_reason: str = "length"  # "stop" (EOS or stop string) | "length"
    prompt_tokens: int = 0


@dataclass
class TokenLogprobs:
    """log p(token_i | tokens_<i) for i >= 1 (the first token has no conditional)."""

    token_ids: list[int]
    logprobs: list[float]

    @property
    def total(self) -> float:
        return float(sum(self.logprobs))


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class LLMBackend(ABC):
    """generate / token_logprobs / score / hidden_states over one model."""

    name: str = "base"

    @abstractmethod
    def generate(self, prompts: Sequence[Prompt], params: SamplingParams | None = None) -> list[Generation]:
        """One completion per prompt."""

    @abstractmethod
    def token_logprobs(self, texts: Sequence[str]) -> list[TokenLogprobs]:
        """Per-token log-probabilities of raw texts (teacher forcing)."""

    def score(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[float]:
        """log p(continuation | prompt), summed over the continuation's tokens."""
        if len(prompts) != len(continuations):
            raise ValueError("prompts and continuations differ in length")
        rendered = [self.render(p) for p in prompts]
        full = [r + c for r, c in zip(rendered, continuations)]
        scored = self.token_logprobs(full)
        out = []
        for r, s in zip(rendered, scored):
            n_prompt = self.count_tokens(r)
            out.append(float(sum(s.logprobs[max(n_prompt - 1, 0):])))
        return out

    def hidden_states(self, input_ids: Any, layers: Sequence[int]) -> dict[int, Any]:
        """{k: residual stream after k decoder layers} for k in `layers` ([B, T, H] tensors)."""
        raise BackendCapabilityError(f"backend '{self.name}' does not expose hidden states")

    def render(self, prompt: Prompt) -> str:
        """Prompt as the model sees it (chat template applied, generation prompt added)."""
        if isinstance(prompt, str):
            return prompt
        return self.tokenizer.apply_chat_template(validate_messages(prompt), tokenize=False,
                                                  add_generation_prompt=True)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def tokenizer(self) -> Any:
        raise BackendCapabilityError(f"backend '{self.name}' has no local tokenizer")

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing to release
        """Release resources (engines, sessions)."""


def validate_messages(messages: Any) -> list[Message]:
    if not isinstance(messages, list) or not messages:
        raise ValueError("a chat prompt must be a non-empty list of messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise ValueError(f"message {i} must be {{'role': str, 'content': str}}, got {m!r}"[:200])
        if m["role"] not in ("system", "user", "assistant"):
            raise ValueError(f"message {i} has unknown role '{m['role']}'")
    return messages
