"""Distillation training: learns a real signal, saves/loads, resumes from its checkpoint."""

import pytest
import torch

from sparse_align.config import ValueModelConfig, ValueTrainConfig
from sparse_align.value.model import ValueModel
from sparse_align.value.train import train_value_head


def _rows(n=40, seed=0):
    """Synthetic responses: reward +1 for tokens from one id range, -1 for another (learnable per prefix)."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(n):
        good = i % 2 == 0
        low = 500 if good else 100
        resp = torch.randint(low, low + 100, (6,), generator=g).tolist()
        rows.append({"prompt_ids": [1, 20, 30], "response_ids": resp, "reward": 1.0 if good else -1.0})
    return rows


def test_head_learns_and_roundtrips(tiny_model, tmp_path):
    vm = ValueModel.build(ValueModelConfig(head_hidden=32), backbone=tiny_model)
    cfg = ValueTrainConfig(epochs=60, batch_tokens=64, lr=3e-3, checkpoint_every=50, val_fraction=0.25)
    metrics = train_value_head(vm, _rows(), cfg, tmp_path / "run")
    assert metrics["train_mse"] < 0.5  # predicting the mean would give 1.0
    assert metrics["val_corr"] > 0.5
    assert all(not p.requires_grad for p in vm.backbone.parameters())  # frozen shared backbone
    vm.save(tmp_path / "vm")
    loaded = ValueModel.load(tmp_path / "vm", backbone=tiny_model)
    ids = torch.tensor([[1, 20, 30, 500, 101]])
    assert torch.allclose(loaded(ids), vm(ids), atol=1e-6)
    assert (tmp_path / "run" / "train_metrics.jsonl").is_file()


def test_resume_continues_from_checkpoint(tiny_model, tmp_path):
    rows = _rows()
    short = ValueTrainConfig(epochs=2, batch_tokens=64, checkpoint_every=1)
    vm = ValueModel.build(ValueModelConfig(head_hidden=8), backbone=tiny_model)
    first = train_value_head(vm, rows, short, tmp_path)
    # a fresh model resumes: with the same total it does no extra steps and restores the weights
    vm2 = ValueModel.build(ValueModelConfig(head_hidden=8), backbone=tiny_model)
    again = train_value_head(vm2, rows, short, tmp_path)
    assert again["train_mse"] == pytest.approx(first["train_mse"], rel=1e-6)
    for a, b in zip(vm.head.parameters(), vm2.head.parameters()):
        assert torch.equal(a, b)
    # a longer schedule continues from the saved step instead of restarting
    longer = short.model_copy(update={"epochs": 4})
    vm3 = ValueModel.build(ValueModelConfig(head_hidden=8), backbone=tiny_model)
    third = train_value_head(vm3, rows, longer, tmp_path)
    assert third["steps"] == 2 * first["steps"]
    lines = (tmp_path / "train_metrics.jsonl").read_text().splitlines()
    assert len(lines) == third["steps"]  # each step logged once across the three runs


def test_too_little_data(tiny_model, tmp_path):
    vm = ValueModel.build(ValueModelConfig(head_hidden=8), backbone=tiny_model)
    with pytest.raises(ValueError, match="at least 2"):
        train_value_head(vm, _rows(1), ValueTrainConfig(), tmp_path)


def test_lora_value_model_trains_saves_loads(tiny_model, tmp_path):
    from sparse_align.value.train import train_value_lora

    tiny_model.save_pretrained(tmp_path / "backbone")
    cfg = ValueModelConfig(backbone=str(tmp_path / "backbone"), head_hidden=8, lora_rank=4)
    vm = ValueModel.build(cfg)
    assert not vm.shares_backbone
    trainable = {n for n, p in vm.named_parameters() if p.requires_grad}
    assert any("lora" in n for n in trainable) and any(n.startswith("head.") for n in trainable)
    metrics = train_value_lora(vm, _rows(8), ValueTrainConfig(epochs=2, lr=1e-2, checkpoint_every=4), tmp_path / "run")
    assert metrics["steps"] == 16
    vm.save(tmp_path / "vm")
    loaded = ValueModel.load(tmp_path / "vm", backbone=tiny_model)  # LoRA: never reuses the caller's backbone
    assert loaded.backbone is not tiny_model
    ids = torch.tensor([[1, 20, 30, 500, 101]])
    assert torch.allclose(loaded(ids), vm.eval()(ids), atol=1e-5)


def _cand_rows(n_prompts=12, per_prompt=3, seed=0):
    """Candidates from id range 500-599 are better by the teacher than those from 100-199."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for p in range(n_prompts):
        for s in range(per_prompt):
            resp = torch.randint(300, 400, (5,), generator=g).tolist()
            cands = []
            for t in (1, 3):
                good = torch.randint(500, 508, (2,), generator=g).tolist()  # few ids: separable in 32 dims
                bad = torch.randint(100, 108, (2,), generator=g).tolist()
                cands.append({"t": t, "ids": good + bad, "rewards": [1.0, 1.0, 0.0, 0.0],
                              "topk_entropy": 0.3 if t == 1 else 1.2})
            rows.append({"prompt_index": p, "sample": s, "prompt_ids": [1, 20 + p], "response_ids": resp,
                         "reward": 0.0, "cands": cands})
    return rows


def test_split_by_prompt_has_no_leakage():
    from sparse_align.value.split import split_by_prompt

    rows = _cand_rows(n_prompts=10)
    train, val = split_by_prompt(rows, 0.3, seed=4)
    assert sorted(train + val) == list(range(len(rows)))
    tp, vp = {rows[i]["prompt_index"] for i in train}, {rows[i]["prompt_index"] for i in val}
    assert not tp & vp and len(vp) == 3
    assert split_by_prompt(rows, 0.3, seed=4) == (train, val)  # deterministic
    no_index = [{"reward": 0.0}] * 4  # rows without prompt_index are their own group
    assert len(split_by_prompt(no_index, 0.5, 0)[1]) == 2


@pytest.mark.parametrize("loss", ["listwise", "pairwise"])
def test_ranking_loss_learns_candidate_order(tiny_model, tmp_path, loss):
    vm = ValueModel.build(ValueModelConfig(head_hidden=32), backbone=tiny_model)
    cfg = ValueTrainConfig(epochs=60, lr=3e-3, batch_tokens=32, rank_batch=16, checkpoint_every=10, rank_loss=loss,
                      mse_weight=0.0, val_fraction=0.25, entropy_bands=[1.0])
    m = train_value_head(vm, _cand_rows(), cfg, tmp_path / loss)
    assert m["val_pairwise_acc"] > 0.85 and m["val_prompts"] == 3
    bands = m["val_pairwise_by_band"]
    assert set(bands) == {"[-inf,1)", "[1,inf)", "all"} and bands["[-inf,1)"]["positions"] == 9


def test_early_stopping_restores_best_checkpoint(tiny_model, tmp_path, monkeypatch):
    """Scripted held-out accuracies 0.6, 0.8, 0.7, 0.65: with patience 2 training stops at the 4th check
    and the returned head is the one of the 2nd check, not the last."""
    import sparse_align.value.train as train_mod

    script, seen = iter([0.6, 0.8, 0.7, 0.65, 0.9, 0.9]), []

    def fake_eval(head, split, cfg, dev):
        if len(split.cand) and split is not fake_eval.train_split:
            seen.append({k: v.clone() for k, v in head.state_dict().items()})
            return {"val_mse": 1.0, "val_corr": 0.0, "val_pairwise_acc": next(script)}
        return {"val_mse": 1.0, "val_corr": 0.0, "val_pairwise_acc": float("nan")}

    real_of = train_mod.Split.of

    def of(feats, rows):  # remember which split is the training one (the final report evaluates it too)
        s = real_of(feats, rows)
        if not hasattr(fake_eval, "train_split"):
            fake_eval.train_split = s
        return s

    monkeypatch.setattr(train_mod, "evaluate_head", fake_eval)
    monkeypatch.setattr(train_mod.Split, "of", staticmethod(of))
    vm = ValueModel.build(ValueModelConfig(head_hidden=8), backbone=tiny_model)
    cfg = ValueTrainConfig(epochs=50, batch_tokens=32, rank_batch=8, checkpoint_every=3, patience=2, val_fraction=0.25)
    m = train_value_head(vm, _cand_rows(), cfg, tmp_path)
    assert m["stopped_early"] and m["steps"] == 12 and m["best_step"] == 6
    for k, v in vm.head.state_dict().items():
        assert torch.equal(v, seen[1][k]) and not torch.equal(v, seen[3][k])
