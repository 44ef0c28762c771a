"""Distillation training: learns a real signal, saves/loads, resumes from its checkpoint."""

import pytest
import torch

from sparse_align.config import TrainConfig, ValueModelConfig
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
    cfg = TrainConfig(epochs=60, batch_tokens=64, lr=3e-3, checkpoint_every=50)
    metrics = train_value_head(vm, _rows(), cfg, tmp_path / "run", val_fraction=0.25)
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
    short = TrainConfig(epochs=2, batch_tokens=64, checkpoint_every=1)
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
        train_value_head(vm, _rows(1), TrainConfig(), tmp_path)


def test_lora_value_model_trains_saves_loads(tiny_model, tmp_path):
    from sparse_align.value.train import train_value_lora

    tiny_model.save_pretrained(tmp_path / "backbone")
    cfg = ValueModelConfig(backbone=str(tmp_path / "backbone"), head_hidden=8, lora_rank=4)
    vm = ValueModel.build(cfg)
    assert not vm.shares_backbone
    trainable = {n for n, p in vm.named_parameters() if p.requires_grad}
    assert any("lora" in n for n in trainable) and any(n.startswith("head.") for n in trainable)
    metrics = train_value_lora(vm, _rows(8), TrainConfig(epochs=2, lr=1e-2, checkpoint_every=4), tmp_path / "run")
    assert metrics["steps"] == 16
    vm.save(tmp_path / "vm")
    loaded = ValueModel.load(tmp_path / "vm", backbone=tiny_model)  # LoRA: never reuses the caller's backbone
    assert loaded.backbone is not tiny_model
    ids = torch.tensor([[1, 20, 30, 500, 101]])
    assert torch.allclose(loaded(ids), vm.eval()(ids), atol=1e-5)


def test_batched_prefix_features_equal_batch1(tiny_model):
    from sparse_align.value.train import prefix_features

    vm = ValueModel.build(ValueModelConfig(head_hidden=8), backbone=tiny_model)
    rows = [{"prompt_ids": [5, 6, 7][:n % 3 + 1], "response_ids": list(range(10, 10 + n)), "reward": float(n)}
            for n in (1, 4, 2, 7, 3)]
    one = prefix_features(vm, rows, batch_rows=1)
    bat = prefix_features(vm, rows, batch_rows=3)
    assert torch.allclose(one[0], bat[0], atol=1e-5)
    assert torch.equal(one[1], bat[1]) and torch.equal(one[2], bat[2])
    assert len(one[0]) == sum(len(r["response_ids"]) for r in rows)
