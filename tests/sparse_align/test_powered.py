"""The powered evaluation end to end on the tiny model with a tiny lexicon teacher: every arm, paired
per-prompt/per-seed rewards, BoN by teacher and by V, pre-registered statistics, resume per arm."""

import json

import pytest
import torch

import sparse_align.eval.powered as powered_mod
from sparse_align.config import SteerEvalConfig
from sparse_align.eval.arms import plan_arms
from sparse_align.eval.paired import ExactGuide, PairedContext
from sparse_align.eval.powered import PoweredContext, run_powered
from sparse_align.eval.powered_report import write_powered_report
from sparse_align.steer.decode import render_prompt

PROMPTS = ["Describe a rainy Monday.", "Hi there", "Write a short review of the town market."]
CALIB = ["Tell me about a bus.", "Describe the garden."]


def _ctx(model, tok, vm, teacher, prompts, split):
    return PairedContext(model, tok, vm, teacher, prompts, [render_prompt(tok, p) for p in prompts], split, 0, 4)


@pytest.fixture(scope="module")
def cfg():
    return SteerEvalConfig(num_prompts=3, seeds=2, max_new_tokens=4, top_k=5, weight=4.0, sia_rates=[0.3, 0.7],
                      primary_rates=[0.3, 0.7], w0_rates=[0.3], exact_rates=[0.3], bon_n=[2], bon_pool=3,
                      sia_bon_rate=0.3, sia_bon_n=2, calibration_prompts=2, batch_rows=4, bootstrap=200,
                      timing_prompts=1, timing_max_rate=0.3)


@pytest.fixture(scope="module")
def run(tiny_model, tokenizer, tiny_value_model, vowel_reward, cfg):
    saved = []
    ctx = PoweredContext(_ctx(tiny_model, tokenizer, tiny_value_model, vowel_reward, PROMPTS, "eval"),
                         _ctx(tiny_model, tokenizer, tiny_value_model, vowel_reward, CALIB, "train"), cfg,
                         {"vowels2": vowel_reward}, on_arm=lambda s: saved.append(json.loads(json.dumps(s))))
    return ctx, run_powered(ctx), saved


def test_primary_pairs_run_before_base_and_dense(cfg):
    """A run cut short has its pre-registered comparisons first; the other rates follow base and dense."""
    one = cfg.model_copy(update={"primary_rates": [0.7]})
    names = [a.name for a in plan_arms(one, {0.3: 1.0, 0.7: 0.5})]
    assert names[:6] == ["sia@70%", "random@70%", "base", "dense", "sia@30%", "random@30%"]
    assert len(names) == len(set(names)) == len(plan_arms(cfg, {0.3: 1.0, 0.7: 0.5}))


def test_all_arms_with_paired_grids(run, cfg):
    _, res, saved = run
    arms = res["arms"]
    assert list(arms) == ["sia@30%", "random@30%", "sia@70%", "random@70%", "base", "dense", "dense-w0", "sia-w0@30%",
                          "dense-exact", "sia-exact@30%", "bon-2[teacher]", "sia@30%+bon-2[teacher]", "bon-2[value]",
                          "sia@30%+bon-2[value]"]
    assert len(saved) == len(arms) + 1 and list(saved[0]["arms"]) == ["sia@30%"]  # partial state after every arm + timing
    for name, a in arms.items():
        want = 3 if name == "base" else 1 if a["family"] in ("bon", "sia+bon") else 2
        assert len(a["rewards"]) == 3 and all(len(r) == want for r in a["rewards"]), name
        assert len(a["scores"]["vowels2"]) == 3
    assert arms["random@30%"]["random_rate"] == arms["sia@30%"]["steered_fraction"]
    assert arms["dense-w0"]["value_calls_per_token"] == 0 and arms["dense"]["value_calls_per_token"] == 5
    assert "values" in arms["base"] and "values" in arms["sia@30%"] and "values" not in arms["dense"]
    # BoN ranked by the teacher is never below the pool's mean, per prompt
    for bon, pool in zip(arms["bon-2[teacher]"]["rewards"], arms["base"]["rewards"]):
        assert bon[0] >= sum(pool) / len(pool) - 1e-12
    assert arms["bon-2[teacher]"]["scores"]["vowels2"] == arms["bon-2[teacher]"]["rewards"]  # same scorer, same pick


def test_analysis_and_report(run, cfg, tmp_path):
    _, res, _ = run
    an = res["analysis"]
    assert set(an["primary"]) == {"sia@30% - random@30%", "sia@70% - random@70%"}
    assert sorted(t["holm_level"] for t in an["primary"].values()) == [0.025, 0.05]
    assert [m["method"] for m in an["matches_dense"]] == ["sia@30%"]
    assert an["matches_dense"][0]["time_ok"] is not None  # batch-1 timing ran for sia@30%
    assert "dense - dense-w0" in an["secondary"] and "sia-exact@30% - sia@30%" in an["secondary"]
    meta = {"name": "t", "task": "sentiment", "teacher": "vowels", "value_model": "tiny", "num_prompts": 3, "seeds": 2,
            "detector": "topk_entropy", "top_k": 5, "weight": 4.0, "max_new_tokens": 4, "bootstrap": 200,
            "equivalence_margin": 0.05}
    write_powered_report(res, meta, tmp_path / "r.json", tmp_path / "r.md")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["arms"]["sia@30%"]["rewards"] == res["arms"]["sia@30%"]["rewards"]  # recomputable statistics
    assert {m["family"] for m in data["methods"]} >= {"base", "dense", "sia", "random"}
    md = (tmp_path / "r.md").read_text()
    assert "| sia@30% |" in md and "Holm" in md


def test_resume_reuses_finished_arms(run, monkeypatch):
    ctx, res, saved = run
    state = json.loads(json.dumps(saved[-1]))
    monkeypatch.setattr(powered_mod, "sample_paired", lambda *a, **k: pytest.fail("decoded a finished arm"))
    again = run_powered(PoweredContext(ctx.paired, ctx.calib, ctx.cfg, ctx.scorers, state=state))
    assert again["arms"]["sia@30%"]["rewards"] == res["arms"]["sia@30%"]["rewards"]
    partial = json.loads(json.dumps(saved[0]))  # sia@30% done
    from sparse_align.eval.paired import sample_paired as real

    calls = []
    monkeypatch.setattr(powered_mod, "sample_paired", lambda *a, **k: calls.append(k.get("desc")) or real(*a, **k))
    redo = run_powered(PoweredContext(ctx.paired, ctx.calib, ctx.cfg, ctx.scorers, state=partial))
    assert "sia@30%" not in calls and "random@30%" in calls and "base" in calls
    assert redo["arms"]["random@30%"]["rewards"] == res["arms"]["random@30%"]["rewards"]  # same noise, same samples


def test_exact_guide_scores_prefix_plus_candidate(tokenizer, vowel_reward):
    guide = ExactGuide(vowel_reward, tokenizer, ["p0", "p1"])
    toks = tokenizer("Hello", add_special_tokens=False)["input_ids"]
    cands = torch.tensor(tokenizer(" a b", add_special_tokens=False)["input_ids"])
    got = guide(1, toks, cands, None)
    want = vowel_reward.score(["p1"] * len(cands), [tokenizer.decode(toks + [c]) for c in cands.tolist()])
    assert got.tolist() == pytest.approx(want)
