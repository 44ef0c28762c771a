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


def test_python_style_dict_is_accepted():
    assert first_json_object("sure: {'n': 4, 'ok': True} done") == {"n": 4, "ok": True}
    assert first_json_object("{'n': 4") is None


def test_repair_turn_feeds_back_the_error_and_fixes_the_reply():
    """Greedy decoding: a repair turn is a new prompt (own reply + the check's reason), so it can succeed."""
    def reply(prompt: str) -> str:
        return '{"n": 2}' if "must be even" in prompt else '{"n": 3}'

    llm = ScriptedBackend([("item", reply)])
    agent = JsonAgent("t", "sys", "item {i}", Out, retries=1)
    out = agent.run(llm, [{"i": 0}], check=lambda v, x: None if v.n % 2 == 0 else "n must be even")
    assert out[0].ok and out[0].value.n == 2 and out[0].attempts == 2
    assert '{"n": 3}' in llm.calls[1] and "must be even" in llm.calls[1]  # the model sees its reply + why
    no_repair = JsonAgent("t", "sys", "item {i}", Out, retries=0)
    bad = no_repair.run(ScriptedBackend([("item", reply)]), [{"i": 0}], check=lambda v, x: "n must be even")
    assert not bad[0].ok and bad[0].error == "n must be even"


def test_reply_cut_off_by_the_token_limit_is_closed():
    """Measured on Qwen2.5-Coder-0.5B: the grounding checker's reason ran past max_new_tokens=80."""
    assert first_json_object('{"grounded": true, "reason": "The cited steps do not') == {
        "grounded": True, "reason": "The cited steps do not"}
    assert first_json_object('x {"a": [1, {"b": "q\\"') == {"a": [1, {"b": 'q"'}]}
    assert first_json_object('{"a": 1, "b":') is None  # a key without its value cannot be completed
    assert first_json_object('{"a" 1}') is None  # complete but invalid is not "truncated"
