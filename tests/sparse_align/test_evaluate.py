"""All methods back to back on a tiny model: every method present, gating and BoN behave as specified."""

import json

import pytest

from runtime.config import ConfigError, load_config
from sparse_align.config import SIAConfig, SteerEvalConfig
from sparse_align.eval.evaluate import EvalContext, check_target, run_evaluation
from sparse_align.eval.metrics import distinct_n, mean_ci
from sparse_align.eval.report import write_report
from sparse_align.eval.tasks import split_prompts
from sparse_align.rewards import make_reward


def test_metrics():
    assert mean_ci([1.0, 1.0, 1.0]) == (1.0, 0.0)
    m, ci = mean_ci([0.0, 2.0])
    assert m == 1.0 and ci == pytest.approx(1.96 * 1.0)
    assert distinct_n([[1, 2, 1, 2]], 2) == pytest.approx(2 / 3)
    assert distinct_n([[1]], 2) == 0.0


def test_prompt_splits_disjoint():
    train = split_prompts("sentiment", "train", 213)  # >= 200 distillation prompts, >= 50 held out
    evals = split_prompts("sentiment", "eval", 107)
    assert not set(train) & set(evals)
    with pytest.raises(ValueError, match="only"):
        split_prompts("sentiment", "eval", 1000)


def test_run_evaluation_all_methods(tiny_model, tokenizer, tiny_value_model, tmp_path):
    cfg = SteerEvalConfig(num_prompts=3, max_new_tokens=6, top_k=5, sia_rates=[0.3, 0.7], bon_n=[2, 3],
                     sia_bon_rate=0.3, calibration_prompts=2, second_scorer="none")
    ctx = EvalContext(tiny_model, tokenizer, tiny_value_model, make_reward("vader"), None, cfg)
    res = run_evaluation(ctx)
    names = [m["method"] for m in res["methods"]]
    assert names == ["base", "dense", "sia@30%", "random@30%", "sia@70%", "random@70%", "bon-2", "bon-3",
                     "sia@30%+bon-2"]
    by = {m["method"]: m for m in res["methods"]}
    assert by["base"]["steered_fraction"] == 0 and by["dense"]["steered_fraction"] == 1
    assert by["dense"]["value_calls_per_token"] == 5
    assert by["sia@30%"]["steered_fraction"] <= by["sia@70%"]["steered_fraction"]
    assert by["random@30%"]["random_rate"] == by["sia@30%"]["steered_fraction"]
    assert by["bon-3"]["reward"] >= by["bon-2"]["reward"] >= by["base"]["reward"]  # nested pools, teacher-ranked
    res["meta"] = {"scale": "test", "task": "sentiment", "teacher": "vader", "second_scorer": "none",
                   "value_model": "tiny", "num_prompts": 3, "max_new_tokens": 6, "top_k": 5, "weight": 5.0,
                   "total_wall_s": 1.0, "device": "cpu", "threads": 1}
    write_report(res, tmp_path / "r.json", tmp_path / "r.md")
    assert json.loads((tmp_path / "r.json").read_text())["methods"][0]["method"] == "base"
    assert "| dense |" in (tmp_path / "r.md").read_text()


def test_check_target_logic():
    base = {"method": "base", "family": "base", "reward": 0.0, "reward_ci95": 0.1, "wall_s": 10.0}
    dense = {"method": "dense", "family": "dense", "reward": 0.5, "reward_ci95": 0.1, "wall_s": 30.0}
    sia = {"method": "sia@20%", "family": "sia", "reward": 0.45, "steered_fraction": 0.22, "wall_s": 18.0}
    rnd = {"method": "random@20%", "family": "random", "reward": 0.2, "wall_s": 18.0}
    (t,) = check_target([base, dense, sia, rnd])
    assert t["reward_vs_dense_ok"] and t["time_ok"] and t["beats_random"]
    slow = dict(sia, wall_s=25.0)
    (t,) = check_target([base, dense, slow, rnd])
    assert not t["time_ok"]


def test_configs_load_and_reject_typos(tmp_path):
    from runtime.paths import repo_root

    for scale in ("small", "full"):
        cfg = load_config(SIAConfig, repo_root() / "experiments" / "configs" / "sparse_align" / f"{scale}.yaml")
        assert cfg.name == scale
    bad = tmp_path / "bad.yaml"
    bad.write_text("eval: {num_promts: 3}\n")
    with pytest.raises(ConfigError, match="num_promts"):
        load_config(SIAConfig, bad)
    with pytest.raises(ConfigError, match="sia_rates"):
        load_config(SIAConfig, None, ["eval.sia_rates=[0.0]"])


def test_interleaved_timing_methods(tiny_model, tokenizer, tiny_value_model):
    from sparse_align.eval.timing import interleaved_timing

    cfg = SteerEvalConfig(num_prompts=1, max_new_tokens=4, top_k=5)
    res = interleaved_timing(tiny_model, tokenizer, tiny_value_model, cfg, {0.2: 1.5, 0.4: 1.0, 0.8: 0.1})
    assert set(res) == {"base", "dense", "sia@20%", "random@20%", "sia@40%", "random@40%"}
    assert res["base"]["added_vs_base"] == 0 and res["dense"]["steered_fraction"] == 1.0
    assert all(v["median_s_per_token"] > 0 for v in res.values())


def test_batched_evaluation_equals_batch1(tiny_model, tokenizer, tiny_value_model):
    """batch_rows > 1 decodes ragged batches: same samples per seed, so the same texts per method;
    per-prompt rate methods and the interleaved batch-1 timing are reported."""
    kw = dict(num_prompts=3, max_new_tokens=6, top_k=5, sia_rates=[0.3], bon_n=[2], sia_bon_rate=0.3,
              calibration_prompts=2, second_scorer="none", prompt_rates=[0.3])
    one = run_evaluation(EvalContext(tiny_model, tokenizer, tiny_value_model, make_reward("vader"), None,
                                     SteerEvalConfig(**kw)))
    bat = run_evaluation(EvalContext(tiny_model, tokenizer, tiny_value_model, make_reward("vader"), None,
                                     SteerEvalConfig(**kw, batch_rows=4, timing_prompts=2)))
    assert [m["method"] for m in bat["methods"]] == ["base", "dense", "sia@30%", "random@30%", "sia-prompt@30%",
                                                     "bon-2", "sia@30%+bon-2"]
    for a, b in zip(one["methods"], bat["methods"]):
        assert a["examples"] == b["examples"] and a["rewards"] == b["rewards"], a["method"]
        assert a["steered_fraction"] == b["steered_fraction"]
    assert one["timing"] is None
    timing = bat["timing"]
    assert set(timing) == {"base", "dense", "sia@30%", "random@30%", "sia-prompt@30%"}
    by = {m["method"]: m for m in bat["methods"]}
    assert by["dense"]["b1_s_per_token"] == timing["dense"]["median_s_per_token"]
    for t in bat["target"]:
        assert t["time_unit"].startswith("s/token")


def test_check_target_uses_batch1_timing():
    base = {"method": "base", "family": "base", "reward": 0.0, "reward_ci95": 0.1, "wall_s": 10.0}
    dense = {"method": "dense", "family": "dense", "reward": 0.5, "reward_ci95": 0.1, "wall_s": 30.0}
    sia = {"method": "sia@20%", "family": "sia", "reward": 0.45, "reward_ci95": 0.05, "steered_fraction": 0.22,
           "wall_s": 12.0}
    rnd = {"method": "random@20%", "family": "random", "reward": 0.2, "reward_ci95": 0.05, "wall_s": 18.0}
    timing = {"base": {"added_vs_base": 0.0}, "dense": {"added_vs_base": 0.10}, "sia@20%": {"added_vs_base": 0.07}}
    (t,) = check_target([base, dense, sia, rnd], timing)
    assert not t["time_ok"] and t["added_wall_s"] == 0.07  # wall times alone would have said ok
    assert t["beats_random"] and t["beats_random_significant"]
