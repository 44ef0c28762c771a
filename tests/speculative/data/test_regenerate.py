"""Regeneration: turn by turn or first turn only, keyed by content hash, resumable after a crash."""

from __future__ import annotations

import pytest

from runtime.llm import Generation, LLMBackend, SamplingParams
from runtime.logging import read_jsonl
from speculative.data.regenerate import content_key, first_turn, regenerate


class EchoBackend(LLMBackend):
    """Replies with a function of the prompt, so the test can check what history each turn saw."""

    name = "echo"

    def __init__(self, fail_after: int | None = None):
        self.calls, self.prompts, self.fail_after = 0, 0, fail_after

    def generate(self, prompts, params=None):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("simulated crash")
        self.prompts += len(prompts)
        return [Generation(text=f"reply to {len(p)} msgs, last={p[-1]['content']}", token_ids=[1, 2])
                for p in prompts]

    def token_logprobs(self, texts):
        raise NotImplementedError


CONVS = [[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "old"},
          {"role": "user", "content": f"r{i}"}, {"role": "assistant", "content": "old"}] for i in range(5)]


def test_regenerate_turn_by_turn_and_resume(tmp_path):
    out, params = tmp_path / "regen.jsonl", SamplingParams()
    with pytest.raises(RuntimeError):
        regenerate(CONVS, EchoBackend(fail_after=2), out, params, model="m", chunk=2, first_turn_only=False)
    assert len(read_jsonl(out)) == 2  # the first chunk (2 calls) completed and was kept
    counts = regenerate(CONVS, EchoBackend(), out, params, model="m", chunk=2, first_turn_only=False)
    rows = read_jsonl(out)
    assert counts["reused"] == 2 and counts["written"] == 3 and len(rows) == 5
    assert [r["id"] for r in rows] == [content_key("m", params, c) for c in CONVS]
    msgs = rows[4]["messages"]
    assert msgs[1]["content"] == "reply to 1 msgs, last=q4"
    assert msgs[3]["content"] == "reply to 3 msgs, last=r4"
    assert CONVS[0][1]["content"] == "old"  # inputs untouched


def test_first_turn_cached_by_content(tmp_path):
    out, params = tmp_path / "regen.jsonl", SamplingParams(max_new_tokens=8)
    convs = [[{"role": "system", "content": "be brief"}, *CONVS[0]], CONVS[1], CONVS[1]]  # a duplicate
    backend = EchoBackend()
    counts = regenerate(convs, backend, out, params, model="m")
    rows = read_jsonl(out)
    assert counts["written"] == 2 and counts["reused"] == 1 and backend.prompts == 2 and counts["generated_tokens"] == 4
    assert rows[0]["messages"] == [*first_turn(convs[0]), {"role": "assistant", "content": "reply to 2 msgs, last=q0"}]
    again = EchoBackend()
    assert regenerate(convs, again, out, params, model="m")["reused"] == 3 and again.prompts == 0
    # another sampling setting is a different key: regenerated, never silently reused
    other = regenerate(convs[:1], EchoBackend(), out, SamplingParams(max_new_tokens=9), model="m")
    assert other["written"] == 1 and len(read_jsonl(out)) == 3


def test_long_prompts_skipped_and_counted(tmp_path):
    convs = [[{"role": "user", "content": "x" * 50}, {"role": "assistant", "content": "a"}], CONVS[0]]
    counts = regenerate(convs, EchoBackend(), tmp_path / "r.jsonl", SamplingParams(), model="m", max_prompt_chars=10)
    assert counts["skipped_long_prompt"] == 1 and counts["written"] == 1
