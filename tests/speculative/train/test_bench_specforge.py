"""bench-specforge's throughput parsing and configuration (the runs themselves are the make target's)."""

import json

import pytest

from speculative.train.bench_specforge import BenchSpecForgeConfig, specforge_overrides, throughput


def test_throughput_skips_the_two_warm_up_steps(tmp_path):
    rows = [{"step": i + 1, "time": t, "tokens": 512, "tokens_per_s": 1.0, "loss": 10.0 - i, "acc_0": 0.1 * i}
            for i, t in enumerate([0.0, 10.0, 12.0, 14.0, 16.0])]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + json.dumps({"step": 5, "val_acc_0": 0.2}) + "\n")
    out = throughput(path)
    assert out["timed_steps"] == 3 and out["tokens"] == 3 * 512
    assert out["target_tok_s"] == pytest.approx(3 * 512 / 6.0)  # steps 3..5 over time(5) - time(2)
    assert out["final_loss"] == 6.0
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    with pytest.raises(RuntimeError, match="need >= 3"):
        throughput(path)


def test_the_runs_use_specforges_configuration():
    over = dict(o.split("=", 1) for o in specforge_overrides(BenchSpecForgeConfig(offline_dir="/x", train_config="t.yaml"), "/run"))
    assert (over["data.draft_vocab_size"], over["ttt_length"], over["data.max_length"]) == ("32000", "7", "512")
    assert (over["optim.batch_size"], over["optim.grad_accum"], over["threads"]) == ("1", "1", "2")
