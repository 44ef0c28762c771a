"""Regeneration replaces assistant turns turn by turn and resumes after an interruption."""

from __future__ import annotations

import pytest

from runtime.llm import Generation, LLMBackend, SamplingParams
from runtime.logging import read_jsonl
from speculative.data.regenerate import regenerate


class EchoBackend(LLMBackend):
    """Replies with a function of the prompt, so the test can check what history each turn saw."""

    name = "echo"

    def __init__(self, fail_after: int | None = None):
        self.calls, self.fail_after = 0, fail_after

    def generate(self, prompts, params=None):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("simulated crash")
        return [Generation(text=f"reply to {len(p)} msgs, last={p[-1]['content']}") for p in prompts]

    def token_logprobs(self, texts):
        raise NotImplementedError


CONVS = [[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "old"},
          {"role": "user", "content": f"r{i}"}, {"role": "assistant", "content": "old"}] for i in range(5)]


def test_regenerate_turn_by_turn_and_resume(tmp_path):
    out = tmp_path / "regen.jsonl"
    with pytest.raises(RuntimeError):
        regenerate(CONVS, EchoBackend(fail_after=2), out, SamplingParams(), batch_size=2)
    assert [r["id"] for r in read_jsonl(out)] == ["0", "1"]  # first chunk (2 calls) completed
    n = regenerate(CONVS, EchoBackend(), out, SamplingParams(), batch_size=2)
    rows = read_jsonl(out)
    assert n == 3 and [r["id"] for r in rows] == ["0", "1", "2", "3", "4"]
    msgs = rows[4]["messages"]
    assert msgs[1]["content"] == "reply to 1 msgs, last=q4"
    assert msgs[3]["content"] == "reply to 3 msgs, last=r4"
    assert CONVS[0][1]["content"] == "old"  # inputs untouched
