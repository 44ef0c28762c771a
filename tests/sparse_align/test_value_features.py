"""Packed value features (prefix + candidates in one forward) equal running each sequence alone; the
distillation data keeps EOS and carries candidate-level teacher targets."""

import json

import pytest
import torch

from sparse_align.config import DistillConfig, ValueModelConfig
from sparse_align.steer.junction import topk_junction
from sparse_align.value.candidates import choose_band_positions, choose_positions, response_entropy
from sparse_align.value.features import packed_features
from sparse_align.value.model import ValueModel


def _rows():
    return [
        {"prompt_index": 0, "prompt_ids": [5, 6, 7], "response_ids": [10, 11, 12, 13], "reward": 0.5,
         "cands": [{"t": 0, "ids": [20, 21, 22], "rewards": [0.1, 0.2, 0.3]},
                   {"t": 2, "ids": [30, 31, 32], "rewards": [0.0, 0.0, 1.0]}]},
        {"prompt_index": 1, "prompt_ids": [8], "response_ids": [14, 15], "reward": -1.0,
         "cands": [{"t": 1, "ids": [40, 41, 42], "rewards": [1.0, 0.0, 0.5]}]},
        {"prompt_index": 2, "prompt_ids": [9, 9], "response_ids": [16, 17, 18, 19, 20, 21], "reward": 0.0},
    ]


def _alone(model, ids):
    return model(torch.tensor([ids]), output_hidden_states=True).hidden_states[-1][0, -1]


def test_packed_features_equal_full_recompute(tiny_model):
    vm = ValueModel.build(ValueModelConfig(head_hidden=8), backbone=tiny_model)
    rows = _rows()
    for batch_rows in (1, 3):
        f = packed_features(vm, rows, batch_rows=batch_rows)
        assert len(f.prefix) == 4 + 2 + 6 and f.cand.shape[:2] == (3, 3)
        at = 0
        for i, r in enumerate(rows):
            for t in range(len(r["response_ids"])):
                ref = _alone(tiny_model, r["prompt_ids"] + r["response_ids"][:t + 1])
                assert torch.allclose(f.prefix[at], ref, atol=1e-4), (batch_rows, i, t)
                assert f.tok_row[at] == i and f.reward[at] == r["reward"]
                at += 1
        pos = 0
        for i, r in enumerate(rows):
            for c in r.get("cands", []):
                for j, cid in enumerate(c["ids"]):
                    ref = _alone(tiny_model, r["prompt_ids"] + r["response_ids"][:c["t"]] + [cid])
                    assert torch.allclose(f.cand[pos, j], ref, atol=1e-4), (batch_rows, i, c["t"], cid)
                assert f.cand_reward[pos].tolist() == pytest.approx(c["rewards"]) and f.pos_row[pos] == i
                pos += 1


def test_choose_positions_deterministic():
    a = choose_positions(20, 4, 0, 3, 1)
    assert a == choose_positions(20, 4, 0, 3, 1) and len(set(a)) == 4 and a == sorted(a)
    assert choose_positions(3, 5, 0, 0, 0) == [0, 1, 2]


def test_distill_keeps_eos_and_labels_candidates(tiny_model, tokenizer, vowel_reward, tmp_path):
    from sparse_align.value.data import generate_distill_data

    cfg = DistillConfig(num_prompts=2, samples_per_prompt=3, max_new_tokens=5, candidate_positions=2, candidate_k=4,
                        prompts_per_batch=2)
    with torch.no_grad():  # make EOS (id 2) likely so some responses end early
        bias = torch.zeros(tiny_model.config.vocab_size)
        bias[2] = 10.0
        tiny_model.lm_head.bias = torch.nn.Parameter(bias)
    try:
        rows = generate_distill_data(tiny_model, tokenizer, ["Say hi.", "Describe a bus."], vowel_reward, cfg,
                                     tmp_path / "d.jsonl")
    finally:
        tiny_model.lm_head.bias = None
    assert len(rows) == 6 and {r["sample"] for r in rows} == {0, 1, 2}
    ended = [r for r in rows if 2 in r["response_ids"]]
    assert ended and all(r["response_ids"][-1] == 2 for r in ended)  # EOS kept, and last
    for r in rows:
        assert len(r["cands"]) == min(2, len(r["response_ids"]))
        for c in r["cands"]:
            assert len(c["ids"]) == 4 and len(c["rewards"]) == 4 and 0 <= c["t"] < len(r["response_ids"])
            text = tokenizer.decode(r["response_ids"][:c["t"]] + [c["ids"][0]], skip_special_tokens=True)
            assert c["rewards"][0] == vowel_reward.score([""], [text])[0]
            assert {"topk_entropy", "full_entropy", "topk_mass", "logp"} <= set(c)


def test_distill_resume_refuses_another_tokenization(tiny_model, tokenizer, vowel_reward, tmp_path):
    """Rows written under another tokenization of the same prompts (a model folder converted without its
    <bos>, say) must not be resumed into one data set."""
    from sparse_align.value.data import generate_distill_data

    cfg = DistillConfig(num_prompts=2, samples_per_prompt=1, max_new_tokens=3, candidate_positions=0)
    path = tmp_path / "d.jsonl"
    prompts = ["Say hi.", "Describe a bus."]
    generate_distill_data(tiny_model, tokenizer, prompts[:1], vowel_reward, cfg, path, completion=True)
    assert len(generate_distill_data(tiny_model, tokenizer, prompts, vowel_reward, cfg, path, completion=True)) == 2
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0]["prompt_ids"] = [tokenizer.bos_token_id] + rows[0]["prompt_ids"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match="another tokenization"):
        generate_distill_data(tiny_model, tokenizer, prompts, vowel_reward, cfg, path, completion=True)


def test_choose_band_positions_only_in_band_and_not_taken():
    ent = [0.1, 2.0, 0.5, 0.9, 3.0, 0.2, 0.05, 1.2]
    low = choose_band_positions(ent, (0.0, 1.0, 3), [0, 5], 0, 1, 2)
    assert low == choose_band_positions(ent, (0.0, 1.0, 3), [0, 5], 0, 1, 2) and low == sorted(low)
    assert len(low) == 3 and set(low) <= {2, 3, 6}
    assert choose_band_positions(ent, (0.0, 1.0, 9), [0], 0, 1, 2) == [2, 3, 5, 6]  # fewer when the band is short
    assert choose_band_positions(ent, (0.5, 2.5, 9), [], 0, 1, 2) == [1, 2, 3, 7]  # lo inclusive, hi exclusive
    assert choose_band_positions(ent, (0.0, 0.01, 2), [], 0, 1, 2) == []


def test_response_entropy_matches_full_forward(tiny_model):
    rows = [{"prompt_ids": [5, 6, 7], "response_ids": [10, 11, 12, 13]}, {"prompt_ids": [8], "response_ids": [14, 15]}]
    got = response_entropy(tiny_model, rows, k=4, batch_rows=2, chunk_positions=3)  # chunks split a row
    for r, ents in zip(rows, got):
        with torch.no_grad():
            logits = tiny_model(torch.tensor([r["prompt_ids"] + r["response_ids"]])).logits[0]
        n = len(r["prompt_ids"])
        ref = topk_junction(logits[n - 1:n - 1 + len(r["response_ids"])], 4)[2]
        assert ents == pytest.approx(ref.tolist(), abs=1e-5)


def test_distill_tops_up_low_entropy_positions_in_place(tiny_model, tokenizer, vowel_reward, tmp_path):
    """A rerun with more candidate positions keeps the sampled responses and the labels already made, labels
    only the new positions (each below the entropy threshold), and a second rerun labels nothing."""
    from sparse_align.value.data import generate_distill_data, top_up_candidates

    path = tmp_path / "d.jsonl"
    prompts = ["Say hi.", "Describe a bus."]
    cfg = DistillConfig(num_prompts=2, samples_per_prompt=2, max_new_tokens=8, candidate_positions=2, candidate_k=4)
    before = generate_distill_data(tiny_model, tokenizer, prompts, vowel_reward, cfg, path)
    ents = response_entropy(tiny_model, before, k=4)
    below = sorted(ents[0])[len(ents[0]) // 2] + 1e-6  # about half of row 0's positions are "low"
    more = cfg.model_copy(update={"candidate_bands": [(0.0, below, 2)]})
    after = generate_distill_data(tiny_model, tokenizer, prompts, vowel_reward, more, path)
    assert [r["response_ids"] for r in after] == [r["response_ids"] for r in before]
    added = 0
    for b, a, e in zip(before, after, ents):
        old = {c["t"]: c for c in b["cands"]}
        assert all(old[t] == c for c in a["cands"] if (t := c["t"]) in old)  # labels kept as they were
        new = [c for c in a["cands"] if c["t"] not in old]
        assert set(old) <= {c["t"] for c in a["cands"]} and len(new) <= 2
        assert all(e[c["t"]] < below and c["topk_entropy"] == pytest.approx(e[c["t"]], abs=1e-5) for c in new)
        assert all(len(c["rewards"]) == 4 for c in new)
        added += len(new)
    assert added > 0
    assert top_up_candidates(tiny_model, tokenizer, after, vowel_reward, more, path) == 0
    assert [json.loads(line) for line in path.read_text().splitlines()] == after


def test_adding_a_band_keeps_the_other_bands_draws(tiny_model, tokenizer):
    rows = [{"prompt_index": i, "sample": 0, "prompt_ids": [5, 6, 7 + i], "response_ids": list(range(10, 30))}
            for i in range(3)]
    from sparse_align.value.candidates import wanted_positions

    one = wanted_positions(tiny_model, rows, 4, 2, [(0.0, 1.2, 3)], seed=0)
    two = wanted_positions(tiny_model, rows, 4, 2, [(0.0, 1.2, 3), (1.2, 9.0, 2)], seed=0)
    uniform = wanted_positions(tiny_model, rows, 4, 2, [], seed=0)
    for u, a, b in zip(uniform, one, two):
        assert set(u) <= set(a) <= set(b) and len(b) - len(a) <= 2


def test_candidate_bands_validated():
    with pytest.raises(ValueError, match="candidate band"):
        DistillConfig(candidate_bands=[(1.0, 0.5, 2)])
