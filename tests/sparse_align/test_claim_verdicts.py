"""SIA's claim verdicts come from the powered evaluation's statistics (Holm lower bounds, equivalence CIs,
batch-1 timing), never from point estimates or constants: synthetic paired arms with known answers."""

import numpy as np
import pytest

from sparse_align.config import SteerEvalConfig
from sparse_align.eval.analysis import analyse
from sparse_align.eval.powered_report import analysis_lines

P = 200  # prompts


@pytest.fixture()
def cfg():
    return SteerEvalConfig(seeds=2, sia_rates=[0.2, 0.4], primary_rates=[0.2, 0.4], w0_rates=[], exact_rates=[], bon_n=[],
                      bootstrap=2000)


def _arm(family, means, rate=None, sd=0.05, seed=0):
    rng = np.random.default_rng(seed)
    rewards = [[float(m + e) for e in rng.normal(0, sd, 2)] for m in means]
    return {"family": family, "target_rate": rate, "rewards": rewards, "steered_fraction": rate}


def _arms(sia20, sia40, rnd=None, dense=None):
    """Per-prompt means (shared prompt effect) for each arm; paired across arms like the real evaluation."""
    prompt = np.random.default_rng(42).normal(0.3, 0.3, P)
    rnd = prompt if rnd is None else rnd
    dense = prompt + 0.3 if dense is None else dense
    return {"base": _arm("base", prompt, seed=1), "dense": _arm("dense", dense, seed=2),
            "sia@20%": _arm("sia", sia20, 0.2, seed=3), "random@20%": _arm("random", rnd, 0.2, seed=4),
            "sia@40%": _arm("sia", sia40, 0.4, seed=5), "random@40%": _arm("random", rnd, 0.4, seed=6)}


FAST = {"dense": {"added_vs_base": 0.10}, "sia@20%": {"added_vs_base": 0.02}, "sia@40%": {"added_vs_base": 0.04}}
SLOW = {"dense": {"added_vs_base": 0.10}, "sia@20%": {"added_vs_base": 0.08}, "sia@40%": {"added_vs_base": 0.09}}


def _prompt():
    return np.random.default_rng(42).normal(0.3, 0.3, P)


def test_beats_random_needs_the_holm_lower_bound_above_zero(cfg):
    p = _prompt()
    an = analyse(_arms(p + 0.2, p + 0.2), cfg, FAST)
    assert all(t["holm_lower"] > 0 for t in an["primary"].values())
    assert an["claims"]["random"]["verdict"] == "met" and an["verdict"]["beats_random_all"] is True
    # equivalent to random (same means): not supported, whatever the sign of the point estimate
    an = analyse(_arms(p + 0.002, p + 0.002), cfg, FAST)
    assert an["claims"]["random"]["verdict"] == "not met" and an["verdict"]["beats_random_all"] is False
    # the other way round: clearly worse than random
    assert analyse(_arms(p - 0.2, p - 0.2), cfg, FAST)["claims"]["random"]["verdict"] == "not met"
    # one pre-registered rate significant, the other not: the claim needs every rate
    an = analyse(_arms(p + 0.2, p), cfg, FAST)
    assert an["verdict"]["beats_random"] == {"sia@20% - random@20%": True, "sia@40% - random@40%": False}
    assert an["claims"]["random"]["verdict"] == "not met"
    assert "sia@40% - random@40%" in an["claims"]["random"]["number"]  # the deciding (worst) comparison


def test_a_point_estimate_above_random_is_not_enough(cfg):
    p = _prompt()
    noise = np.random.default_rng(7).normal(0, 1.0, P)
    noise -= noise.mean() - 0.03  # SIA ahead by +0.03 on average, with a CI far wider than that
    an = analyse(_arms(p + noise, p + noise), cfg, FAST)
    t = an["primary"]["sia@20% - random@20%"]
    assert t["diff"] > 0 and t["lo"] < 0
    assert an["claims"]["random"]["verdict"] == "not met"


def test_matching_dense_is_equivalence_and_time_is_measured(cfg):
    p = _prompt()
    dense = p + 0.3
    an = analyse(_arms(dense + 0.01, p + 0.1, dense=dense), cfg, FAST)  # sia@20% ~ dense, sia@40% far below
    eq = {m["method"]: m["equivalent"] for m in an["matches_dense"]}
    assert eq == {"sia@20%": True, "sia@40%": False}
    claims = an["claims"]
    assert claims["reward"]["verdict"] == "met" and claims["reward"]["number"].startswith("sia@20%")
    assert claims["time"]["verdict"] == "met" and claims["all_dense"]["verdict"] == "met"
    assert claims["all"]["verdict"] == "met"  # sia@20%: equivalent, fast, and Holm-significant against random
    assert an["verdict"]["matches_dense_at_half_time"] is True
    # the same rewards with SIA adding more than half of dense's time: reward met, time and all not met
    claims = analyse(_arms(dense + 0.01, p + 0.1, dense=dense), cfg, SLOW)["claims"]
    assert claims["reward"]["verdict"] == "met" and claims["time"]["verdict"] == "not met"
    assert claims["all"]["verdict"] == "not met" and claims["all_dense"]["verdict"] == "not met"
    # no batch-1 timing: time cannot be decided, and is not guessed
    an = analyse(_arms(dense + 0.01, p + 0.1, dense=dense), cfg, None)
    assert an["claims"]["time"]["verdict"] == "not measured" and an["claims"]["all"]["verdict"] == "not measured"
    assert an["verdict"]["matches_dense_at_half_time"] is None


def test_near_dense_with_a_wide_ci_is_not_equivalence(cfg):
    p = _prompt()
    dense = p + 0.3
    noise = np.random.default_rng(8).normal(0, 1.0, P)
    noise -= noise.mean()  # same mean as dense, far too uncertain to call equivalent within +-0.05
    an = analyse(_arms(dense + noise, dense + noise, dense=dense), cfg, FAST)
    assert abs(an["matches_dense"][0]["diff"]) < 0.02  # the point estimate alone would say "matches"
    assert an["claims"]["reward"]["verdict"] == "not met" and an["claims"]["all"]["verdict"] == "not met"


def test_missing_arms_are_not_measured(cfg):
    p = _prompt()
    arms = _arms(p + 0.2, p + 0.2)
    only = {k: arms[k] for k in ("base", "sia@20%", "sia@40%")}  # no random, no dense arm
    claims = analyse(only, cfg, FAST)["claims"]
    assert {part: c["verdict"] for part, c in claims.items()} == {
        "random": "not measured", "reward": "not measured", "time": "not measured", "all": "not measured",
        "all_dense": "not measured"}


def test_a_run_in_progress_makes_no_holm_claim(cfg):
    """One of two pre-registered comparisons done: Holm over one test is not the registered test, so the
    claim waits; the comparison is shown unadjusted, marked interim."""
    p = _prompt()
    arms = _arms(p + 0.2, p + 0.2)
    del arms["random@40%"]
    an = analyse(arms, cfg, FAST)
    assert an["primary"] == {} and an["claims"]["random"]["verdict"] == "not measured"
    interim = an["secondary"]["sia@20% - random@20% (interim, unadjusted)"]
    assert interim["lo"] > 0.1 and "_boot" not in interim


def test_powered_status_reports_the_arms_so_far(cfg, tmp_path):
    import json

    from sparse_align.config import SIAConfig
    from sparse_align.stages import _resume_key, powered_status

    sia = SIAConfig(name="t", run_dir=str(tmp_path / "run"), results_dir=str(tmp_path), eval=cfg.model_dump())
    p = _prompt()
    arms = _arms(p + 0.2, p + 0.2)
    for a in arms.values():
        a["reward_ci"] = {"mean": 0.5, "lo": 0.4, "hi": 0.6}
        a["scores"] = {}
    del arms["random@40%"]
    with pytest.raises(FileNotFoundError, match="no powered run in progress"):
        powered_status(sia)
    (tmp_path / "sparse_align_eval_t.partial.json").write_text(json.dumps(
        {"key": _resume_key(sia), "taus": {"0.2": 0.4, "0.4": 0.2}, "arms": arms}))
    text = powered_status(sia).read_text()
    assert text.startswith("# SIA powered evaluation (t): INTERIM, 5 of 7 arms done")
    assert "Not yet run: random@40%, dense-w0" in text and "a rerun of `powered` resumes" in text
    assert "sia@20% - random@20% (interim, unadjusted)" in text and "claim `random`" in text


def test_report_prints_the_claim_verdicts(cfg):
    p = _prompt()
    an = analyse(_arms(p + 0.2, p + 0.2), cfg, FAST)
    text = "\n".join(analysis_lines(an, cfg.equivalence_margin))
    assert "claim `random`" in text and "**met**" in text and "claim `reward`" in text
