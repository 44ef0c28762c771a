"""Gate: cue-word fallback classifier, LLM output parsing, caching, and one real SmolLM2 round."""

from __future__ import annotations

import pytest

from runtime.llm import Generation
from sopr_rag.config import GateConfig
from sopr_rag.gate import EXPERTS, Gate, classify, parse_weights


def top(weights):
    return max(weights, key=weights.get)


@pytest.mark.parametrize("query, intent", [
    ("why does the chiller keep tripping on high head pressure?", "causal"),
    ("what comes after closing the valves, and in which order do I restart?", "flow"),
    ("which fluid type and what temperature for frost removal?", "entity"),
])
def test_classifier_picks_the_cued_intent(query, intent):
    w = classify(query)
    assert top(w) == intent
    assert sum(w.values()) == pytest.approx(1.0) and min(w.values()) >= 0.1


def test_classifier_without_cues_is_uniform():
    assert classify("pump B") == pytest.approx({e: 1 / 3 for e in EXPERTS})


def test_classifier_formula():
    # one causal cue ("why"), nothing else: causal (1+1)/4, others 1/4, squeezed above the floor
    w = classify("why pump B", floor=0.1)
    assert w["causal"] == pytest.approx(0.1 + 0.7 * 2 / 4) and w["flow"] == pytest.approx(0.1 + 0.7 / 4)


def test_prior_scales_the_intent_weights():
    w = classify("pump B", floor=0.1, prior={"entity": 1.0, "causal": 2.0, "flow": 1.0})
    assert w == pytest.approx({"entity": 0.1 + 0.7 / 4, "causal": 0.1 + 0.7 / 2, "flow": 0.1 + 0.7 / 4})


@pytest.mark.parametrize("text, expected", [
    ('{"entity": 1, "causal": 3, "flow": 0}', {"entity": 0.25, "causal": 0.75, "flow": 0.0}),
    ('Sure! {"entity":0.2,"causal":0.2,"flow":0.6} hope this helps', {"entity": 0.2, "causal": 0.2, "flow": 0.6}),
    ("flow", {"entity": 0.1, "causal": 0.1, "flow": 0.8}),
    ("Why: causal", {"entity": 0.1, "causal": 0.8, "flow": 0.1}),
])
def test_parse_weights_accepts_json_or_a_lone_intent(text, expected):
    assert parse_weights(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "I am not sure", "what or why or how", '{"entity": -1, "flow": 2}',
                                  '{"entity": 0, "causal": 0, "flow": 0}'])
def test_parse_weights_rejects_garbage(text):
    assert parse_weights(text) is None


class FakeLLM:
    def __init__(self, reply):
        self.reply, self.calls = reply, 0

    def generate(self, prompts, params=None):
        self.calls += len(prompts)
        return [Generation(text=self.reply, prompt_tokens=10) for _ in prompts]


def test_unparseable_llm_output_falls_back_and_is_cached(tmp_path):
    cfg = GateConfig(mode="llm", cache_path=str(tmp_path / "gate.jsonl"))
    llm = FakeLLM("I cannot answer that.")
    gate = Gate(cfg, llm=llm)
    query = "why is the pump cavitating?"
    w, source = gate.weights(query)
    assert source == "fallback" and w == pytest.approx(classify(query, cfg.weight_floor, cfg.prior))
    assert gate.weights(query) == (w, "fallback+cache") and llm.calls == 1
    gate.cache.close()
    again = Gate(cfg, llm=FakeLLM("flow"))  # a new process reads the cache file: no LLM call
    assert again.weights(query) == (w, "fallback+cache") and again.llm().calls == 0


def test_parsed_llm_weights_get_the_floor(tmp_path):
    gate = Gate(GateConfig(mode="llm", cache_path=str(tmp_path / "g.jsonl")), llm=FakeLLM('{"flow": 1}'))
    w, source = gate.weights("what next?")
    assert source == "llm" and w == pytest.approx({"entity": 0.1, "causal": 0.1, "flow": 0.8})


def test_corrupt_cache_lines_are_skipped(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text('not json\n{"key": "k", "value": {"weights": {}, "source": "llm"}}\n')
    gate = Gate(GateConfig(mode="llm", cache_path=str(path)), llm=FakeLLM("flow"))
    assert len(gate.cache) == 1


def test_real_smollm2_gate_returns_valid_weights(tmp_path):
    """The embedded SmolLM2 through runtime.llm: whatever it says, the gate yields valid weights."""
    gate = Gate(GateConfig(mode="llm", cache_path=str(tmp_path / "g.jsonl"), max_new_tokens=16))
    w, source = gate.weights("the chiller tripped on high head pressure, why?")
    assert source in ("llm", "fallback")
    assert set(w) == set(EXPERTS) and sum(w.values()) == pytest.approx(1.0) and min(w.values()) >= 0.1 - 1e-9
    assert gate.stats["llm_calls"] == 1 and gate.stats["prompt_tokens"] > 0
