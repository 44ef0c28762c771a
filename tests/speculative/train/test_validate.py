"""Held-out validation: examples held out are never trained on, and the metrics equal a per-example reference."""

from __future__ import annotations

import json

import pytest
import torch

from runtime.logging import read_jsonl
from speculative.data.dataset import Example, collate
from speculative.train.ttt import ttt_unroll
from speculative.train.validate import split_holdout, validate
from tests.speculative.train.test_resume import CONFIG, write_data


def _examples(n: int) -> list[Example]:
    return [Example(torch.arange(i, i + 5), torch.ones(5, dtype=torch.bool)) for i in range(n)]


def test_split_holdout_takes_whole_examples_from_the_end():
    ex = _examples(6)
    train, held = split_holdout(ex, 2)
    assert train == ex[:4] and held == ex[4:]
    assert split_holdout(ex, 0) == (ex, [])
    with pytest.raises(ValueError, match="no training examples"):
        split_holdout(ex, 6)
    repeated = [*ex, Example(ex[1].input_ids.clone(), ex[1].loss_mask)]  # a repeat of a trained conversation
    train, held = split_holdout(repeated, 2)
    assert train == repeated[:5] and held == [repeated[5]]


def _setup(target_dir, tmp_path, *overrides):
    from runtime.config import load_config
    from speculative.train.build import build_training
    from speculative.train.config import DraftTrainConfig

    data = write_data(tmp_path / "data.jsonl", n=14)  # 14 distinct conversations (the generator repeats after 14)
    cfg = load_config(DraftTrainConfig, CONFIG, [f"target.model={target_dir}", f"data.source={data}",
                                            f"out_dir={tmp_path / 'run'}", "threads=1", *overrides])
    return cfg, build_training(cfg)


def test_validation_equals_a_per_example_reference_and_is_never_trained_on(spec_tiny_target_dir, tmp_path,
                                                                            monkeypatch):
    from speculative.train.trainer import DraftTrainer

    monkeypatch.setenv("LLMSYS_CACHE_DIR", str(tmp_path / "cache"))
    cfg, setup = _setup(spec_tiny_target_dir, tmp_path, "val.examples=5", "val.every=2", "max_steps=3",
                        "data.limit=14")
    assert len(setup.val_examples) == 5 and setup.report["val_examples"] == 5
    held = {tuple(e.input_ids.tolist()) for e in setup.val_examples}
    trained = {tuple(e.input_ids.tolist()) for e in setup.schedule.examples}
    assert not held & trained

    trainer = DraftTrainer(cfg, setup.target, setup.draft, setup.schedule, setup.val_examples)
    trainer.train()
    rows = {r["step"]: r for r in read_jsonl(tmp_path / "run" / "metrics.jsonl")}
    assert "val_acc_0" not in rows[1] and {"val_acc_0", "val_accept_len"} <= rows[2].keys() <= rows[3].keys()
    assert {"val_acc_0", "val_accept_len"} <= rows[0].keys() and "loss" not in rows[0]  # the starting point
    # confidence bands go to their own file, by step, never into the scalar metrics
    assert not any("val_bands" in r for r in rows.values())
    saved = json.loads((tmp_path / "run" / "val_bands.json").read_text())
    assert set(saved) == {"0", "2", "3"}

    # reference: every held-out example alone (no padding), hits and rows summed over examples
    draft, target = setup.draft.eval(), setup.target
    hits, counted, loss, accept, accept_rows = [0] * 3, [0] * 3, [0.0] * 3, 0.0, 0
    band_rows, band_hits = [0] * 5, [0] * 5
    with torch.no_grad():
        for e in setup.val_examples:
            batch = collate([e])
            tout = target.forward(batch.input_ids, batch.attention_mask, draft.t2d)
            res = ttt_unroll(draft, batch, tout, ttt_length=3)
            # naive band reference: step-0 row t predicts the target at row t+1, counted where row t+2 is a loss row
            want = (batch.attention_mask & batch.loss_mask)[0]
            for t in range(want.numel() - 2):
                if want[t + 2]:
                    conf = float(tout.target_probs[0, t + 1].max())
                    i = sum(conf >= edge for edge in (0.3, 0.5, 0.7, 0.9))
                    band_rows[i] += 1
                    band_hits[i] += int(res.correct[0, 0, t])
            for k in range(3):
                hits[k] += int(res.correct[k].sum())
                counted[k] += res.counted[k]
                loss[k] += res.ploss[k] * res.counted[k]
            accept += res.accept_len * res.accept_rows
            accept_rows += res.accept_rows
    got = validate(trainer.unroll, target, draft.t2d, setup.val_examples, ttt_length=3, batch_size=2)
    assert got["val_rows"] == counted[0] > 0
    for k in range(3):
        assert got[f"val_acc_{k}"] == pytest.approx(hits[k] / counted[k], abs=1e-9)
        assert got[f"val_ploss_{k}"] == pytest.approx(loss[k] / counted[k], rel=1e-4)
    assert got["val_accept_len"] == pytest.approx(accept / accept_rows, rel=1e-6)
    assert got["val_ploss_0"] > 0
    bands = got["val_bands"]
    assert [b["rows"] for b in bands] == band_rows and sum(band_rows) == got["val_rows"]
    assert [b["acc_0"] for b in bands] == pytest.approx([h / max(r, 1) for h, r in zip(band_hits, band_rows)])
    assert sum(b["share"] for b in bands) == pytest.approx(1.0)
    assert sum(b["acc_0"] * b["rows"] for b in bands) / got["val_rows"] == pytest.approx(got["val_acc_0"])


def test_a_checkpoint_written_before_a_setting_existed_resumes_at_its_default():
    from speculative.train.config import DraftTrainConfig
    from speculative.train.trainer import with_defaults

    stored = DraftTrainConfig().model_dump(mode="json")
    del stored["val"]
    stored["optim"].pop("min_lr_ratio")
    filled = with_defaults(stored, DraftTrainConfig().model_dump(mode="json"))
    assert filled == DraftTrainConfig().model_dump(mode="json")
    assert with_defaults({"val": {"examples": 3}}, {"val": {"examples": 0, "every": 0}}) == {
        "val": {"examples": 3, "every": 0}}
