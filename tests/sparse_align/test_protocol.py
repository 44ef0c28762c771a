"""Issue 14's protocol pieces beyond the powered evaluation: the junction measurement and the w sweep on
the tiny model, the lexicon second scorers, the configs and the CLI verbs."""

import numpy as np
import pytest

from runtime.config import load_config
from runtime.paths import repo_root
from sparse_align.config import SIAConfig, SteerConfig, SteerEvalConfig, SweepConfig
from sparse_align.eval.paired import PairedContext
from sparse_align.steer.decode import render_prompt

PROMPTS = ["Describe a rainy Monday.", "Hi there"]


def _ctx(model, tok, vm, teacher):
    return PairedContext(model, tok, vm, teacher, PROMPTS, [render_prompt(tok, p) for p in PROMPTS], "train", 0, 4)


def test_junction_measurement(tiny_model, tokenizer, vowel_reward):
    from sparse_align.eval.junctions import measure

    steer = SteerConfig(mode="base", top_k=4, weight=2.0, max_new_tokens=5)
    res = measure(tiny_model, _ctx(tiny_model, tokenizer, None, vowel_reward), steer, 2, [0.2, 0.6])
    assert res["responses"] == 4 and res["positions"] >= 4
    for kind in ("max", "steer"):
        for rate, row in res["captured"][kind].items():
            assert row["oracle"] >= max(row["topk_entropy"], row["full_entropy"], row["topk_mass"]) - 1e-9
            assert row["random"] == float(rate)
    assert res["recommended_detector"] in ("topk_entropy", "full_entropy", "topk_mass")
    assert res["gain_total"]["max"] > 0


def test_w_sweep(tiny_model, tokenizer, tiny_value_model, vowel_reward):
    from sparse_align.eval.sweep import run_sweep, sweep_lines

    ev = SteerEvalConfig(top_k=4, max_new_tokens=4, bootstrap=100)
    pts = run_sweep(_ctx(tiny_model, tokenizer, tiny_value_model, vowel_reward),
                    SweepConfig(weights=[0.0, 2.0], rates=[0.5, 1.0], seeds=1), ev, {0.5: 1.0})
    assert [(p["rate"], p["weight"]) for p in pts] == [(0.5, 0.0), (0.5, 2.0), (1.0, 0.0), (1.0, 2.0)]
    by = {(p["rate"], p["weight"]): p for p in pts}
    assert by[(1.0, 0.0)]["value_calls_per_token"] == 0 and by[(1.0, 2.0)]["value_calls_per_token"] == 4
    assert by[(1.0, 2.0)]["kl_per_token"] >= 0 and by[(1.0, 2.0)]["steered_fraction"] == 1.0
    assert len(sweep_lines(pts)) == 2 + 4


@pytest.mark.parametrize("name", ["afinn", "textblob"])
def test_lexicon_scorers(name):
    pytest.importorskip(name)
    from sparse_align.rewards import make_reward

    r = make_reward(name)
    good, bad, flat = r.score(["p"] * 3, ["What a wonderful, lovely day.", "A terrible, awful mess.", "The bus."])
    assert good > flat > bad or (good > 0 > bad and flat == 0)
    assert all(-1 <= v <= 1 for v in (good, bad, flat))


@pytest.mark.parametrize("name", ["full", "gemma_base", "powered_smoke", "small", "harmless"])
def test_configs_load(name):
    cfg = load_config(SIAConfig, repo_root() / "experiments" / "configs" / "sparse_align" / f"{name}.yaml")
    assert cfg.name == name
    if name in ("full", "gemma_base"):
        assert cfg.eval.num_prompts >= 100 and cfg.eval.seeds >= 8 and cfg.distill.num_prompts is None
        assert cfg.distill.max_new_tokens is None and cfg.distill.candidate_positions > 0
        assert set(cfg.eval.primary_rates) == {0.2, 0.4} and cfg.train.patience > 0 and cfg.train.weight_decay > 0
    if name == "gemma_base":
        assert cfg.eval.task == "sentiment-completion" and cfg.eval.max_new_tokens == 48 and 16 in cfg.eval.bon_n


def test_completion_prompts_and_split(tokenizer):
    from sparse_align.eval.tasks import prompt_ids, split_prompts

    train, evals = split_prompts("sentiment-completion", "train", None), split_prompts("sentiment-completion", "eval", None)
    assert len(train) == 213 and len(evals) == 107 and not set(train) & set(evals)
    raw = prompt_ids(tokenizer, evals[0], "sentiment-completion")
    chat = prompt_ids(tokenizer, evals[0], "sentiment")
    assert tokenizer.decode(raw).strip().endswith(evals[0]) and len(chat) > len(raw)


def test_cli_rejects_bad_overrides(capsys):
    from sparse_align.__main__ import main

    small = repo_root() / "experiments" / "configs" / "sparse_align" / "small.yaml"
    assert main(["powered", "--config", str(small), "eval.seedz=3"]) == 2
    assert "seedz" in capsys.readouterr().err


def test_bon_pool_validated():
    with pytest.raises(ValueError, match="bon_pool"):
        SteerEvalConfig(bon_n=[16], bon_pool=8)
    assert np.isclose(SteerEvalConfig().equivalence_margin, 0.05)


def test_run_guard_refuses_other_settings(tmp_path):
    from sparse_align.runguard import check_key

    data = tmp_path / "distill.jsonl"
    check_key(data, {"n": 8})
    data.write_text("{}\n")
    check_key(data, {"n": 8})  # same settings: resume
    with pytest.raises(ValueError, match="other settings"):
        check_key(data, {"n": 4})
    legacy = tmp_path / "old.jsonl"
    legacy.write_text("{}\n")
    with pytest.raises(ValueError, match="predates"):
        check_key(legacy, {"n": 8})
    check_key(tmp_path / "train", {"a": 1})  # a folder that does not exist yet
