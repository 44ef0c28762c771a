"""Shared per-position Gumbel noise: paired samples across methods."""

import pytest
import torch

from sparse_align.config import SteerConfig
from sparse_align.steer.batch_decode import generate_steered_batch
from sparse_align.steer.decode import render_prompt
from sparse_align.steer.noise import SharedNoise, noise_seed

PROMPTS = ["Describe a rainy Monday.", "Hi", "Write a short review of the town market."]


def _run(model, tok, vm, cfg, seeds=(0, 1)):
    ids = [render_prompt(tok, p) for p in PROMPTS]
    jobs = [(i, s) for i in range(len(ids)) for s in seeds]
    return generate_steered_batch(model, tok, [ids[i] for i, _ in jobs], cfg, vm,
                                  generators=[SharedNoise(0, 1, i, s) for i, s in jobs])


def test_gumbel_max_samples_the_softmax():
    logits = torch.log(torch.tensor([0.6, 0.3, 0.1]))
    draws = [SharedNoise(7, i).gumbel_choice(logits) for i in range(6000)]
    assert draws.count(0) / 6000 == pytest.approx(0.6, abs=0.025)
    assert draws.count(2) / 6000 == pytest.approx(0.1, abs=0.015)


def test_noise_is_keyed_by_position():
    logits = torch.zeros(1000)
    a, b = SharedNoise(1, 2, 3), SharedNoise(1, 2, 3)
    assert [a.gumbel_choice(logits) for _ in range(5)] == [b.gumbel_choice(logits) for _ in range(5)]
    c = SharedNoise(1, 2, 4)
    assert [c.gumbel_choice(logits) for _ in range(5)] != [SharedNoise(1, 2, 3).gumbel_choice(logits) for _ in range(5)]
    assert noise_seed(1, 2) == noise_seed(1, 2) != noise_seed(2, 1)


@pytest.mark.parametrize("mode,extra", [("base", {}), ("sia", {"tau": 1.6}), ("random", {"random_rate": 0.5})])
def test_identical_methods_identical_samples(tiny_model, tokenizer, mode, extra):
    from sparse_align.config import ValueModelConfig
    from sparse_align.value.model import ValueModel

    torch.manual_seed(3)
    vm = ValueModel.build(ValueModelConfig(head_hidden=8), backbone=tiny_model).eval()  # a quiet head: samples vary
    cfg = SteerConfig(mode=mode, top_k=5, weight=1.0, max_new_tokens=8, **extra)
    one, two = _run(tiny_model, tokenizer, vm, cfg), _run(tiny_model, tokenizer, vm, cfg)
    assert [g.token_ids for g in one] == [g.token_ids for g in two]
    assert len({tuple(g.token_ids) for g in one}) == len(one)  # every (prompt, seed) its own sample
    seeds = [g.token_ids for g in _run(tiny_model, tokenizer, vm, cfg, seeds=(0, 2))]
    assert seeds[0::2] == [g.token_ids for g in one][0::2]  # seed 0 unchanged by which other seeds run
    assert seeds[1::2] != [g.token_ids for g in one][1::2]  # seed 2 is another sample than seed 1


def test_truncation_agrees_with_base_where_base_is_in_topk(tiny_model, tokenizer):
    """Dense at w = 0 samples from the top-K only: with shared noise its token equals base's exactly when
    base's token is in the top-K (Gumbel-max restricted to the top-K), and differs otherwise."""
    import copy

    model = copy.deepcopy(tiny_model)
    with torch.no_grad():
        model.lm_head.weight.mul_(40.0)  # peaked distributions: base's token is often, not always, in the top-K
    k, both = 3, {True: 0, False: 0}
    base = _run(model, tokenizer, None, SteerConfig(mode="base", top_k=k, max_new_tokens=6), seeds=range(4))
    w0 = _run(model, tokenizer, None, SteerConfig(mode="dense", top_k=k, weight=0.0, max_new_tokens=6), seeds=range(4))
    jobs = [(i, s) for i in range(len(PROMPTS)) for s in range(4)]
    for (i, _), b, t in zip(jobs, base, w0):
        assert all(r.value_calls == 0 for r in t.records)  # w = 0 never calls a value model
        prefix = render_prompt(tokenizer, PROMPTS[i])
        for pos in range(min(len(b.token_ids), len(t.token_ids))):
            logits = model(torch.tensor([prefix])).logits[0, -1]
            in_top = b.token_ids[pos] in torch.topk(logits, k).indices.tolist()
            both[in_top] += 1
            assert (t.token_ids[pos] == b.token_ids[pos]) == in_top
            if not in_top:
                break
            prefix = prefix + [b.token_ids[pos]]
    assert both[True] > 0 and both[False] > 0  # both cases exercised
