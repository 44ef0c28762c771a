"""The junction detector (`SteerConfig.detector`, per request `sia_detector`) is honoured by the HF and the
vLLM V1 processors exactly as by the core loop: the detector decides which positions are steered.

Two hand-made steps separate the detectors at tau = 0.5 (top-K = 10):
- "narrow": 10 equal logits, the rest of the vocabulary at -1e4 -> top-K entropy ln 10, full entropy ln 10,
  mass outside the top-K ~0;
- "long tail": one logit at 8, everything else at 0 -> top-K entropy ~0.03, full entropy ~10, mass outside
  the top-K ~0.94.
"""

from types import SimpleNamespace

import pytest
import torch

from sparse_align.config import SteerConfig
from sparse_align.integrations.settings import SIASettingsError, parse_request_settings
from sparse_align.steer.decode import generate_steered, render_prompt
from sparse_align.steer.junction import DETECTORS
from sparse_align.value.model import ValueModel

TAU, K = 0.5, 10
# which of the two steps [narrow, long tail] each detector steers at TAU
EXPECTED = {"topk_entropy": [True, False], "full_entropy": [True, True], "topk_mass": [False, True]}


def _steps(vocab: int) -> list[torch.Tensor]:
    narrow = torch.full((vocab,), -1e4)
    narrow[100:110] = 0.0
    tail = torch.zeros(vocab)
    tail[200] = 8.0
    return [narrow, tail]


def _was_steered(before: torch.Tensor, after: torch.Tensor) -> bool:
    if torch.equal(before, after):
        return False
    assert int(torch.isfinite(after).sum()) == K  # a steered row keeps only the top-K candidates
    return True


def test_expected_pattern_is_what_the_detectors_say(tokenizer):
    from sparse_align.steer.junction import junction

    for name, want in EXPECTED.items():
        assert [float(junction(s, K, name)[2]) >= TAU for s in _steps(len(tokenizer))] == want, name


# ----------------------------------------------------------------------------- per-request setting
def test_detector_is_a_request_setting():
    assert parse_request_settings({"sia_mode": "sia"}).detector == "topk_entropy"
    for name in DETECTORS:
        assert parse_request_settings({"sia_mode": "sia", "sia_detector": name}).detector == name


@pytest.mark.parametrize("bad", ["entropy", "TOPK_MASS", 3, None, True])
def test_unknown_detector_names_the_field_and_the_choices(bad):
    with pytest.raises(SIASettingsError, match="sia_detector") as err:
        parse_request_settings({"sia_mode": "sia", "sia_detector": bad})
    for name in DETECTORS:
        assert name in str(err.value)


# ----------------------------------------------------------------------------- HF processor
@pytest.mark.parametrize("detector", DETECTORS)
def test_hf_processor_steers_the_detectors_positions(detector, tokenizer, tiny_value_model):
    from sparse_align.integrations.hf import SIALogitsProcessor

    proc = SIALogitsProcessor(tiny_value_model, SteerConfig(mode="sia", tau=TAU, top_k=K, detector=detector,
                                                            greedy=True))
    ids, got = torch.tensor([[1, 5, 7]]), []
    for scores in _steps(len(tokenizer)):
        out = proc(ids, scores[None].clone())
        got.append(_was_steered(scores, out[0]))
        ids = torch.cat([ids, out.argmax(-1, keepdim=True)], dim=1)  # the same generation, one token on
    assert got == EXPECTED[detector]
    assert proc.steered == sum(EXPECTED[detector]) and proc.steps == 2


def test_hf_processor_replays_the_loop_with_a_non_default_detector(tiny_model, tokenizer, tiny_value_model):
    """On a real (tiny) model: full-vocabulary entropy >= 5 nats steers every token of this near-uniform model,
    top-K entropy (<= ln 5) never would; the processor must steer exactly where generate_steered does."""
    ids = render_prompt(tokenizer, "Describe a rainy Monday.")
    cfg = SteerConfig(mode="sia", tau=5.0, detector="full_entropy", greedy=True, max_new_tokens=8, top_k=5,
                      weight=3.0)
    ours = generate_steered(tiny_model, tokenizer, ids, cfg, tiny_value_model)
    steered = sum(r.steered for r in ours.records)
    assert steered > 0
    from sparse_align.integrations.hf import SIALogitsProcessor

    proc = SIALogitsProcessor(tiny_value_model, cfg, pad_token_id=2)
    ref = tiny_model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=8, eos_token_id=2,
                              pad_token_id=2, logits_processor=[proc])[0, len(ids):].tolist()
    assert ours.token_ids == ref[: len(ours.token_ids)]
    assert proc.steered == steered


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


def _added(*rows):
    from vllm.v1.sample.logits_processor import BatchUpdate

    return BatchUpdate(batch_size=len(rows), removed=[], added=list(rows), moved=[])


@pytest.mark.parametrize("detector", DETECTORS)
def test_vllm_processor_steers_the_requests_detector_positions(detector, vllm_proc, tokenizer):
    vllm_v1, proc = vllm_proc
    errors = vllm_v1.SIAVLLMLogitsProcessor.stats["errors"]
    out_ids: list[int] = []  # vLLM's live output list
    proc.update_state(_added((0, _params(sia_mode="sia", sia_tau=TAU, sia_top_k=K, sia_detector=detector),
                              [1, 5, 7], out_ids)))
    assert proc.requests[0].cfg.detector == detector
    got = []
    for scores in _steps(len(tokenizer)):
        out = proc.apply(scores[None].clone())
        got.append(_was_steered(scores, out[0]))
        out_ids.append(int(out[0].argmax()))
    assert got == EXPECTED[detector]
    assert vllm_v1.SIAVLLMLogitsProcessor.stats["errors"] == errors  # steered, not contained failures


def test_vllm_rejects_an_unknown_detector_at_admission(vllm_proc):
    vllm_v1, _ = vllm_proc
    with pytest.raises(SIASettingsError, match="sia_detector"):
        vllm_v1.SIAVLLMLogitsProcessor.validate_params(_params(sia_mode="sia", sia_detector="entropy"))
