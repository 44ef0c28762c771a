"""One LLM "agent" call: fixed prompt in, JSON out, validated by a pydantic schema, rejects with reasons.

Every agent of the benchmark builder and the response-utility judge is a `JsonAgent`: a system prompt,
a user-prompt template, and a schema. The model's reply is searched for its first JSON object
(code fences and chatter around it are tolerated; a Python-style dict with single quotes or
True/False is accepted too, and a reply cut off by the token limit is closed where it stopped); a reply that is not JSON, fails the schema or fails the caller's
semantic `check` (e.g. "cites a step that does not exist") is retried `retries` times as a *repair
turn*: the model sees its own reply and the exact error and is asked for the corrected JSON only.
A repair turn is a different prompt, so it is useful under greedy decoding too. What still fails
is a reject with the last reason.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Sequence
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
    return _python_dict(text) or _truncated_object(text)


def _truncated_object(text: str) -> dict[str, Any] | None:
    """A reply cut off by max_new_tokens ({"ok": true, "reason": "the st): close the open string and brackets."""
    start = text.find("{")
    if start < 0:
        return None
    frag, closers, in_str, esc = text[start:].rstrip(), [], False, False
    for ch in frag:
        if in_str:
            esc, in_str = (False, in_str) if esc else (ch == "\\", ch != '"')
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            closers.append("}" if ch == "{" else "]")
        elif ch in "}]" and closers:
            closers.pop()
    if not closers:  # complete but invalid, not truncated
        return None
    body = frag + ('"' if in_str else "")
    body = re.sub(r"[,:\s]+$", "", body)  # a dangling separator cannot be completed
    try:
        obj = json.loads(body + "".join(reversed(closers)))
    except json.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def _python_dict(text: str) -> dict[str, Any] | None:
    """First balanced {...} that parses as a Python literal dict ({'a': True}), as small models write."""
    for m in re.finditer(r"\{", text):
        depth = 0
        for j in range(m.start(), len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                try:
                    obj = ast.literal_eval(text[m.start():j + 1])
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    break
                return obj if isinstance(obj, dict) and all(isinstance(k, str) for k in obj) else None
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


REPAIR = ("Your reply was not usable: {error}. Reply again with ONLY the corrected JSON object, no other text.")
MAX_ECHO_CHARS = 600  # of the failed reply, shown back in a repair turn

Check = Callable[[Any, dict[str, Any]], "str | None"]


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

    def run(self, llm: LLMBackend, inputs: Sequence[dict[str, Any]], check: Check | None = None
            ) -> list[AgentReply[T]]:
        """One reply per input dict (batched); failures get up to `retries` repair turns.

        check(value, input) -> None when the parsed value is acceptable, else the reason (fed back).
        """
        prompts = [self.prompt(**x) for x in inputs]
        replies: list[AgentReply[T] | None] = [None] * len(prompts)
        todo = list(range(len(prompts)))
        for attempt in range(1 + self.retries):
            if not todo:
                break
            params = self.params
            if attempt and not params.greedy:
                params = SamplingParams(**{**params.__dict__, "seed": (params.seed or 0) + attempt})
            batch = [prompts[i] if not attempt else self.repair_prompt(prompts[i], replies[i]) for i in todo]
            gens = llm.generate(batch, params)
            still = []
            for i, g in zip(todo, gens):
                r = parse_reply(g.text, self.schema)
                if r.ok and check is not None:
                    why = check(r.value, inputs[i])
                    if why:
                        r = AgentReply(None, g.text, why)
                r.attempts = attempt + 1
                replies[i] = r
                if not r.ok:
                    still.append(i)
            todo = still
        return [r for r in replies if r is not None]

    @staticmethod
    def repair_prompt(prompt: list[dict[str, str]], failed: AgentReply | None) -> list[dict[str, str]]:
        raw = (failed.raw if failed else "")[:MAX_ECHO_CHARS] or "(empty reply)"
        error = failed.error if failed and failed.error else "invalid"
        return [*prompt, {"role": "assistant", "content": raw}, {"role": "user", "content": REPAIR.format(error=error)}]
