"""A deterministic scripted LLM backend: replies chosen by rules over the prompt text.

For tests and dry runs of the agent workflow without a model. Each rule is (substring, reply or
callable(prompt_text) -> reply); the first rule whose substring occurs in the rendered prompt wins.
Every call is recorded in `calls`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from runtime.llm.base import Generation, LLMBackend, Prompt, SamplingParams, TokenLogprobs

Reply = str | Callable[[str], str]


class ScriptedBackend(LLMBackend):
    name = "scripted"

    def __init__(self, rules: Sequence[tuple[str, Reply]], default: Reply = "{}"):
        self.rules, self.default = list(rules), default
        self.calls: list[str] = []

    def render(self, prompt: Prompt) -> str:
        if isinstance(prompt, str):
            return prompt
        return "\n".join(f"<{m['role']}>\n{m['content']}" for m in prompt)

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams | None = None) -> list[Generation]:
        out = []
        for p in prompts:
            text = self.render(p)
            self.calls.append(text)
            reply = next((r for key, r in self.rules if key in text), self.default)
            out.append(Generation(text=reply(text) if callable(reply) else reply, finish_reason="stop"))
        return out

    def token_logprobs(self, texts: Sequence[str]) -> list[TokenLogprobs]:
        return [TokenLogprobs(token_ids=[], logprobs=[]) for _ in texts]
