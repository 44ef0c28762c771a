"""One LLM "agent" call: fixed prompt in, JSON out, validated by a pydantic schema, rejects with reasons.

Every agent of the benchmark builder and the response-utility judge is a `JsonAgent`: a system prompt,
a user-prompt template, and a schema. The model's reply is searched for its first JSON object
(code fences and chatter around it are tolerated); a reply that is not JSON or fails the schema is a
reject with a reason, retried `retries` times with a different seed when sampling is on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from runtime.llm import LLMBackend, SamplingParams

T = TypeVar("T", bound=BaseModel)


def first_json_object(text: str) -> dict[str, Any] | None:
    """The first {...} in `text` that decodes as a JSON object, else None."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


@dataclass
class AgentReply(Generic[T]):
    value: T | None
    raw: str
    error: str | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.value is not None


def parse_reply(raw: str, schema: type[T]) -> AgentReply[T]:
    obj = first_json_object(raw)
    if obj is None:
        return AgentReply(None, raw, "no JSON object in reply")
    try:
        return AgentReply(schema.model_validate(obj), raw)
    except ValidationError as err:
        why = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in err.errors())
        return AgentReply(None, raw, f"schema: {why}"[:300])


class JsonAgent(Generic[T]):
    """A named LLM role with a fixed prompt and an output schema."""

    def __init__(self, name: str, system: str, template: str, schema: type[T], *,
                 params: SamplingParams | None = None, retries: int = 1):
        self.name, self.system, self.template, self.schema = name, system, template, schema
        self.params = params or SamplingParams(max_new_tokens=256)
        self.retries = retries

    def prompt(self, **fields: Any) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": self.template.format(**fields)}]

    def run(self, llm: LLMBackend, inputs: Sequence[dict[str, Any]]) -> list[AgentReply[T]]:
        """One reply per input dict (batched); failed items are retried with a bumped seed."""
        prompts = [self.prompt(**x) for x in inputs]
        replies: list[AgentReply[T] | None] = [None] * len(prompts)
        todo = list(range(len(prompts)))
        for attempt in range(1 + self.retries):
            if not todo:
                break
            params = self.params
            if attempt and not params.greedy:
                params = SamplingParams(**{**params.__dict__, "seed": (params.seed or 0) + attempt})
            gens = llm.generate([prompts[i] for i in todo], params)
            still = []
            for i, g in zip(todo, gens):
                r = parse_reply(g.text, self.schema)
                r.attempts = attempt + 1
                replies[i] = r
                if not r.ok:
                    still.append(i)
            todo = still if not self.params.greedy else []  # greedy: a retry would repeat the same reply
        return [r for r in replies if r is not None]
