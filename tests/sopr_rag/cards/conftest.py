"""A scripted LLM backend for card tests: replies chosen per runbook title, every prompt recorded."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

import pytest

from runtime.llm import Generation, LLMBackend, SamplingParams


def card_json(name: str, aliases=(), function: str = "", symptoms=("it stopped working",)) -> str:
    return json.dumps({"components": [{"name": name, "aliases": list(aliases), "function": function}],
                       "symptoms": list(symptoms), "conditions": [], "causes": ["a fault"], "actions": ["fix it"]})


class StubLLM(LLMBackend):
    """generate(): reply(title, is_repair) per prompt; counts calls and keeps every prompt."""

    name = "stub"

    def __init__(self, reply: Callable[[str, bool], str]):
        self.reply = reply
        self.prompts: list[list[dict]] = []
        self.params: list[SamplingParams | None] = []  # one per generate() call

    def generate(self, prompts: Sequence, params: SamplingParams | None = None) -> list[Generation]:
        out = []
        self.params.append(params)
        for p in prompts:
            self.prompts.append(p)
            title = re.search(r"Title: (.*)", p[1]["content"]).group(1)
            text = self.reply(title, len(p) > 2)
            out.append(Generation(text=text, token_ids=list(range(len(text.split()))), finish_reason="stop",
                                  prompt_tokens=len(p[1]["content"].split())))
        return out

    def token_logprobs(self, texts):
        raise NotImplementedError

    def titles(self) -> list[str]:
        return [re.search(r"Title: (.*)", p[1]["content"]).group(1) for p in self.prompts]


@pytest.fixture()
def make_card():
    """card_json(name, aliases, function, symptoms) -> a valid card reply."""
    return card_json


@pytest.fixture()
def stub_llm():
    """Factory: stub_llm(reply) -> StubLLM; default reply = a valid card naming the title's first word."""
    def make(reply: Callable[[str, bool], str] | None = None) -> StubLLM:
        return StubLLM(reply or (lambda title, repair: card_json(title.split()[0])))
    return make
