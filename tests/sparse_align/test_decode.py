import pytest
import torch

from sparse_align.config import SteerConfig, ValueModelConfig
from sparse_align.integrations.hf import SIALogitsProcessor
from sparse_align.steer.decode import generate_steered, render_prompt
from sparse_align.value.model import ValueModel


@pytest.fixture(scope="module")
def prompt_ids(tokenizer):
    return render_prompt(tokenizer, "Describe a rainy Monday.")


@pytest.fixture(scope="module")
def separate_value_model(tiny_model, tiny_value_model):
    """Same weights as tiny_value_model but its own backbone object: forces the separate-cache path."""
    import copy

    vm = ValueModel(tiny_value_model.cfg, copy.deepcopy(tiny_model))
    vm.head.load_state_dict(tiny_value_model.head.state_dict())
    return vm.eval()


def test_base_greedy_matches_hf_generate(tiny_model, tokenizer, prompt_ids):
    cfg = SteerConfig(mode="base", greedy=True, max_new_tokens=12)
    ours = generate_steered(tiny_model, tokenizer, prompt_ids, cfg)
    ref = tiny_model.generate(torch.tensor([prompt_ids]), do_sample=False, max_new_tokens=12, eos_token_id=2,
                              pad_token_id=2)[0, len(prompt_ids):].tolist()
    assert ours.token_ids == ref[: len(ours.token_ids)]
    assert ours.steered_fraction == 0 and ours.value_calls == 0


def test_shared_cache_equals_separate_value_model(tiny_model, tokenizer, prompt_ids, tiny_value_model,
                                                  separate_value_model):
    cfg = SteerConfig(mode="dense", greedy=True, max_new_tokens=12, top_k=5, weight=3.0)
    shared = generate_steered(tiny_model, tokenizer, prompt_ids, cfg, tiny_value_model)
    separate = generate_steered(tiny_model, tokenizer, prompt_ids, cfg, separate_value_model)
    base = generate_steered(tiny_model, tokenizer, prompt_ids, cfg.model_copy(update={"mode": "base"}))
    assert shared.token_ids == separate.token_ids
    assert shared.token_ids != base.token_ids  # the loud head really steers
    assert shared.steered_fraction == 1.0
    assert shared.value_calls == 5 * len(shared.records)


def test_hf_logits_processor_replays_loop(tiny_model, tokenizer, prompt_ids, tiny_value_model):
    cfg = SteerConfig(mode="dense", greedy=True, max_new_tokens=10, top_k=5, weight=3.0)
    ours = generate_steered(tiny_model, tokenizer, prompt_ids, cfg, tiny_value_model)
    proc = SIALogitsProcessor(tiny_value_model, cfg, pad_token_id=2)
    ref = tiny_model.generate(torch.tensor([prompt_ids]), do_sample=False, max_new_tokens=10, eos_token_id=2,
                              pad_token_id=2, logits_processor=[proc])[0, len(prompt_ids):].tolist()
    assert ours.token_ids == ref[: len(ours.token_ids)]
    assert proc.steered == proc.steps > 0


def test_sia_gate_and_records(tiny_model, tokenizer, prompt_ids, tiny_value_model):
    never = generate_steered(tiny_model, tokenizer, prompt_ids,
                             SteerConfig(mode="sia", tau=99.0, max_new_tokens=8), tiny_value_model,
                             generator=torch.Generator().manual_seed(0))
    assert never.steered_fraction == 0
    cfg = SteerConfig(mode="sia", tau=1.5, max_new_tokens=16, top_k=10)
    gen = generate_steered(tiny_model, tokenizer, prompt_ids, cfg, tiny_value_model,
                           generator=torch.Generator().manual_seed(0))
    for r in gen.records:
        assert r.steered == (r.entropy >= 1.5)
        assert r.value_calls == (10 if r.steered else 0)
        assert r.time_s >= 0 and r.logp_base <= 0
    assert [r.token_id for r in gen.records] == gen.token_ids


def test_seeded_sampling_is_reproducible(tiny_model, tokenizer, prompt_ids, tiny_value_model):
    cfg = SteerConfig(mode="random", random_rate=0.5, max_new_tokens=10)
    a = generate_steered(tiny_model, tokenizer, prompt_ids, cfg, tiny_value_model,
                         generator=torch.Generator().manual_seed(3))
    b = generate_steered(tiny_model, tokenizer, prompt_ids, cfg, tiny_value_model,
                         generator=torch.Generator().manual_seed(3))
    assert a.token_ids == b.token_ids


def test_bad_inputs(tiny_model, tokenizer, prompt_ids):
    with pytest.raises(ValueError, match="needs a value model"):
        generate_steered(tiny_model, tokenizer, prompt_ids, SteerConfig(mode="dense"))
    with pytest.raises(ValueError, match="empty prompt"):
        generate_steered(tiny_model, tokenizer, [], SteerConfig(mode="base"))
    with pytest.raises(ValueError):
        SteerConfig(top_k=1)
    with pytest.raises(FileNotFoundError):
        ValueModel.load("/nonexistent/value_model", backbone=tiny_model)
    assert ValueModelConfig().lora_rank == 0
