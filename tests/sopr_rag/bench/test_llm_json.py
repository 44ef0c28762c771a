from pydantic import BaseModel

from runtime.llm import SamplingParams
from sopr_rag.bench.llm_json import JsonAgent, first_json_object, parse_reply
from sopr_rag.bench.scripted import ScriptedBackend


class Out(BaseModel):
    n: int


def test_first_json_object_tolerates_fences_and_chatter():
    assert first_json_object('Here:\n```json\n{"a": "x}", "b": {"c": 1}}\n```') == {"a": "x}", "b": {"c": 1}}
    assert first_json_object('{broken {"ok": 1}') == {"ok": 1}
    assert first_json_object("[1, 2]") is None and first_json_object("nothing") is None


def test_parse_reply_gives_reasons():
    assert parse_reply('{"n": 3}', Out).value == Out(n=3)
    assert parse_reply("no json", Out).error == "no JSON object in reply"
    assert "n:" in parse_reply('{"n": "three"}', Out).error


def test_sampled_agent_retries_only_failures():
    replies = iter(["garbage", '{"n": 2}'])
    llm = ScriptedBackend([("item 0", '{"n": 1}'), ("item 1", lambda _: next(replies))])
    agent = JsonAgent("t", "sys", "item {i}", Out, params=SamplingParams(temperature=0.7, seed=1), retries=1)
    out = agent.run(llm, [{"i": 0}, {"i": 1}])
    assert [r.value.n for r in out] == [1, 2] and [r.attempts for r in out] == [1, 2]
    assert len(llm.calls) == 3
    greedy = JsonAgent("t", "sys", "item {i}", Out, retries=3)
    assert not greedy.run(ScriptedBackend([], default="nope"), [{"i": 5}])[0].ok  # greedy: no pointless retry
