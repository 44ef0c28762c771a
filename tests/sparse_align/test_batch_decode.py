"""Ragged batched decoding = the batch-1 loop, row by row (same seeds -> same tokens and records)."""

import pytest
import torch

from sparse_align.config import SteerConfig
from sparse_align.steer.batch_decode import generate_steered_batch
from sparse_align.steer.decode import generate_steered, render_prompt
from sparse_align.steer.gate import SteerGate

PROMPTS = ["Describe a rainy Monday.", "Hi", "Write a short review of the town market, please, in detail."]


@pytest.fixture(scope="module")
def prompts_ids(tokenizer):
    ids = [render_prompt(tokenizer, p) for p in PROMPTS]
    assert len({len(i) for i in ids}) == 3  # different lengths: the packing/masking is exercised
    return ids


def _both(model, tok, ids, cfg, vm):
    one = [generate_steered(model, tok, p, cfg, vm, generator=torch.Generator().manual_seed(i),
                            gate=SteerGate(cfg, seed=i)) for i, p in enumerate(ids)]
    bat = generate_steered_batch(model, tok, ids, cfg, vm,
                                 generators=[torch.Generator().manual_seed(i) for i in range(len(ids))],
                                 gates=[SteerGate(cfg, seed=i) for i in range(len(ids))])
    return one, bat


@pytest.mark.parametrize("mode,extra", [("base", {}), ("dense", {}), ("sia", {"tau": 1.9}),
                                        ("random", {"random_rate": 0.4}), ("sia", {"tau": 1.9, "target_rate": 0.3})])
@pytest.mark.parametrize("greedy", [True, False])
def test_batch_matches_batch1(tiny_model, tokenizer, tiny_value_model, prompts_ids, mode, extra, greedy):
    cfg = SteerConfig(mode=mode, greedy=greedy, max_new_tokens=10, top_k=5, weight=3.0, **extra)
    one, bat = _both(tiny_model, tokenizer, prompts_ids, cfg, tiny_value_model)
    for a, b in zip(one, bat):
        assert a.token_ids == b.token_ids
        assert [r.steered for r in a.records] == [r.steered for r in b.records]
        assert [r.value_calls for r in a.records] == [r.value_calls for r in b.records]
        for ra, rb in zip(a.records, b.records):
            assert rb.entropy == pytest.approx(ra.entropy, abs=1e-4)
            assert rb.logp_base == pytest.approx(ra.logp_base, abs=1e-4)
            assert rb.logp_used == pytest.approx(ra.logp_used, abs=1e-4)
        assert b.text == a.text and b.wall_s > 0
    if mode == "dense":
        base = generate_steered_batch(tiny_model, tokenizer, prompts_ids, cfg.model_copy(update={"mode": "base"}))
        assert [g.token_ids for g in base] != [g.token_ids for g in bat]  # steering really changed tokens


def test_batch_stops_rows_independently(tiny_model, tokenizer, tiny_value_model, prompts_ids):
    """A row that hits EOS stops; the others go on (EOS forced by a model whose EOS is the argmax)."""
    cfg = SteerConfig(mode="base", greedy=True, max_new_tokens=6, top_k=5)
    first = generate_steered(tiny_model, tokenizer, prompts_ids[0], cfg).token_ids
    old = tiny_model.generation_config.eos_token_id
    tiny_model.generation_config.eos_token_id = [2, first[2]]  # row 0 stops at its 3rd token
    try:
        one, bat = _both(tiny_model, tokenizer, prompts_ids, cfg, tiny_value_model)
    finally:
        tiny_model.generation_config.eos_token_id = old
    assert len(bat[0].token_ids) == 3
    assert [g.token_ids for g in bat] == [g.token_ids for g in one]


def test_batch_real_smollm2_matches_batch1(smollm2_model, tokenizer, prompts_ids):
    from sparse_align.config import ValueModelConfig
    from sparse_align.value.model import ValueModel

    torch.manual_seed(0)
    vm = ValueModel.build(ValueModelConfig(head_hidden=16), backbone=smollm2_model).eval()
    cfg = SteerConfig(mode="sia", tau=1.0, max_new_tokens=8, weight=8.0)
    one, bat = _both(smollm2_model, tokenizer, prompts_ids, cfg, vm)
    assert [g.token_ids for g in bat] == [g.token_ids for g in one]
    assert 0 < sum(g.steered_fraction for g in bat) < len(bat)  # some steered, some not: mixed widths


def test_per_prompt_rate_on_real_smollm2(smollm2_model, tokenizer):
    """Per-prompt rate targeting on the real model: every prompt's steered fraction near the target."""
    from sparse_align.config import ValueModelConfig
    from sparse_align.eval.tasks import split_prompts
    from sparse_align.value.model import ValueModel

    torch.manual_seed(0)
    vm = ValueModel.build(ValueModelConfig(head_hidden=16), backbone=smollm2_model).eval()
    ids = [render_prompt(tokenizer, p) for p in split_prompts("sentiment", "eval", 4)]
    cfg = SteerConfig(mode="sia", tau=1.0, target_rate=0.3, max_new_tokens=30, weight=2.0)
    gens = generate_steered_batch(smollm2_model, tokenizer, ids, cfg, vm,
                                  generators=[torch.Generator().manual_seed(i) for i in range(4)],
                                  gates=[SteerGate(cfg, seed=i) for i in range(4)])
    for g in gens:
        if len(g.records) >= 20:
            assert abs(g.steered_fraction - 0.3) <= 0.12, g.steered_fraction
    assert sum(len(g.records) >= 20 for g in gens) >= 3
