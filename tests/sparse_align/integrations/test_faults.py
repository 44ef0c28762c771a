"""Fault injection for the SIA engine integrations: bad per-request settings, a failing value model inside
the vLLM processor (no engine needed: the processor is driven with BatchUpdates directly), bad teacher
names, and HF processor state across generate calls."""

from types import SimpleNamespace

import pytest
import torch

from sparse_align.config import SIAConfig, SteerConfig
from sparse_align.integrations.settings import SIASettingsError, parse_request_settings
from sparse_align.value.model import ValueModel


@pytest.mark.parametrize("extra,match", [
    ({"sia_weight": float("inf")}, "sia_weight"),
    ({"sia_weight": float("nan")}, "sia_weight"),
    ({"sia_tau": float("-inf")}, "sia_tau"),
    ({"sia_top_k": "5"}, "sia_top_k"),  # no coercion: a string is not a number
    ({"sia_top_k": True}, "sia_top_k"),  # nor is a bool
    ({"sia_weight": "3"}, "sia_weight"),
    ({"sia_top_k": 5000}, "sia_top_k"),
])
def test_request_settings_are_strict_and_finite(extra, match):
    with pytest.raises(SIASettingsError, match=match):
        parse_request_settings({"sia_mode": "sia", **extra})


def test_steer_config_rejects_non_finite_weight():
    with pytest.raises(ValueError, match="weight"):
        SteerConfig(weight=float("inf"))


# ----------------------------------------------------------------------------- teacher names
@pytest.mark.parametrize("teacher,match", [
    ("no_such_reward", "unknown teacher 'no_such_reward'"),
    ("hf-rm:/nonexistent", "/nonexistent is not a HF model folder"),
])
def test_unknown_teacher_fails_by_name(teacher, match):
    with pytest.raises(ValueError, match=match):
        SIAConfig.model_validate({"distill": {"teacher": teacher}})


def test_teacher_must_be_the_one_the_pipeline_uses():
    assert SIAConfig().distill.teacher is None  # default: the task's teacher
    assert SIAConfig.model_validate({"distill": {"teacher": "vader"}}).distill.teacher == "vader"
    with pytest.raises(ValueError, match="distill.teacher 'judge' is not the teacher of task 'sentiment'"):
        SIAConfig.model_validate({"distill": {"teacher": "judge"}})  # would be recorded, then VADER used


# ----------------------------------------------------------------------------- vLLM processor, no engine
@pytest.fixture()
def vllm_proc(monkeypatch, tiny_value_model):
    vllm_v1 = pytest.importorskip("sparse_align.integrations.vllm_v1")
    monkeypatch.setattr(ValueModel, "load", classmethod(lambda cls, folder, backbone=None: tiny_value_model))
    cfg = SimpleNamespace(additional_config={"sia_value_model": "/some/value_model"})
    return vllm_v1, vllm_v1.SIAVLLMLogitsProcessor(cfg, torch.device("cpu"), False)


def _params(**extra):
    from vllm import SamplingParams

    return SamplingParams(temperature=0.0, max_tokens=4, extra_args=extra or None)


def _update(added=(), removed=()):
    from vllm.v1.sample.logits_processor import BatchUpdate

    return BatchUpdate(batch_size=len(added), removed=list(removed), added=list(added), moved=[])


def test_processor_without_value_model_fails_at_startup_naming_the_setting(monkeypatch):
    vllm_v1 = pytest.importorskip("sparse_align.integrations.vllm_v1")
    monkeypatch.delenv("SIA_VALUE_MODEL", raising=False)
    with pytest.raises(ValueError, match="sia_value_model"):
        vllm_v1.SIAVLLMLogitsProcessor(SimpleNamespace(additional_config={}), torch.device("cpu"), False)
    with pytest.raises(ValueError, match="/no/such/folder"):
        vllm_v1.SIAVLLMLogitsProcessor(SimpleNamespace(additional_config={"sia_value_model": "/no/such/folder"}),
                                       torch.device("cpu"), False)


def test_failing_request_is_contained_and_the_next_is_served(vllm_proc, monkeypatch, tokenizer):
    vllm_v1, proc = vllm_proc
    errors = vllm_v1.SIAVLLMLogitsProcessor.stats["errors"]
    vocab = len(tokenizer)
    # a request without prompt ids (embeddings) fails in update_state: contained, not raised
    proc.update_state(_update(added=[(0, _params(sia_mode="dense", sia_top_k=5), None, [])]))
    assert 0 not in proc.requests and vllm_v1.SIAVLLMLogitsProcessor.stats["errors"] == errors + 1

    # the value model raising inside apply: contained, that row keeps its plain logits
    def boom(self, token_ids, candidates):
        raise RuntimeError("value model exploded")

    out_ids: list[int] = []
    proc.update_state(_update(added=[(0, _params(sia_mode="dense", sia_top_k=5), [1, 2, 3], out_ids)]))
    logits = torch.randn(1, vocab)
    with monkeypatch.context() as m:
        m.setattr(vllm_v1.SequenceValueScorer, "score", boom)
        assert torch.equal(proc.apply(logits.clone()), logits)
    assert 0 not in proc.requests and vllm_v1.SIAVLLMLogitsProcessor.stats["errors"] == errors + 2

    # non-finite values from the value model: contained too
    with monkeypatch.context() as m:
        m.setattr(vllm_v1.SequenceValueScorer, "score", lambda self, t, c: torch.full((c.shape[-1],), float("nan")))
        proc.update_state(_update(added=[(0, _params(sia_mode="dense", sia_top_k=5), [1, 2, 3], out_ids)]))
        assert torch.equal(proc.apply(logits.clone()), logits)
    assert vllm_v1.SIAVLLMLogitsProcessor.stats["errors"] == errors + 3

    # the next good request in the same slot is steered normally
    proc.update_state(_update(removed=[0]))
    proc.update_state(_update(added=[(0, _params(sia_mode="dense", sia_top_k=5), [1, 2, 3], out_ids)]))
    steered = proc.apply(logits.clone())
    assert torch.isfinite(steered).sum() == 5 and not torch.equal(steered, logits)
    assert vllm_v1.SIAVLLMLogitsProcessor.stats["errors"] == errors + 3


def test_slot_reuse_by_a_plain_request_drops_old_steering(vllm_proc, tokenizer):
    _, proc = vllm_proc
    proc.update_state(_update(added=[(0, _params(sia_mode="dense", sia_top_k=5), [1, 2, 3], [])]))
    proc.update_state(_update(added=[(0, _params(), [4, 5], [])]))  # plain request takes slot 0
    logits = torch.randn(1, len(tokenizer))
    assert torch.equal(proc.apply(logits.clone()), logits)


# ----------------------------------------------------------------------------- HF processor
def test_hf_processor_state_does_not_carry_over_between_generate_calls(tiny_model, tokenizer, tiny_value_model):
    from sparse_align.integrations.hf import SIALogitsProcessor
    from sparse_align.steer.decode import render_prompt

    ids = torch.tensor([render_prompt(tokenizer, "Describe a rainy Monday.")])
    cfg = SteerConfig(mode="random", random_rate=0.5, greedy=True, top_k=5, weight=3.0, max_new_tokens=12)

    def run(proc):
        before = proc.steered
        out = tiny_model.generate(ids, do_sample=False, max_new_tokens=12, eos_token_id=2, pad_token_id=2,
                                  logits_processor=[proc])[0, ids.shape[1]:].tolist()
        return out, proc.steered - before

    proc = SIALogitsProcessor(tiny_value_model, cfg, pad_token_id=2)
    first, second = run(proc), run(proc)
    fresh = run(SIALogitsProcessor(tiny_value_model, cfg, pad_token_id=2))
    assert first == second == fresh  # the gate's random stream restarts with each generation
