"""The shipped value head: export with sha256 + model card, load verifies the sha256."""

import pytest
import torch

from sparse_align.config import ValueModelConfig
from sparse_align.value.model import HEAD_FILE, ValueModel
from sparse_align.value.ship import export_head, load_shipped


def test_export_and_verified_load(tiny_model, tmp_path):
    vm = ValueModel.build(ValueModelConfig(head_hidden=8), backbone=tiny_model)
    vm.save(tmp_path / "vm")
    dest = export_head(tmp_path / "vm", tmp_path / "ship", {"val_pairwise_acc": 0.71})
    assert "val_pairwise_acc: 0.71" in (dest / "MODEL_CARD.md").read_text()
    loaded = load_shipped(tiny_model, dest)
    ids = torch.tensor([[1, 20, 30]])
    assert torch.allclose(loaded(ids), vm(ids))
    assert load_shipped(tiny_model, tmp_path / "nothing") is None
    data = bytearray((dest / HEAD_FILE).read_bytes())
    data[-1] ^= 1
    (dest / HEAD_FILE).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        load_shipped(tiny_model, dest)


def test_the_powered_run_steers_with_a_saved_head_and_resumes_by_its_bytes(tiny_model, tmp_path):
    import os

    from sparse_align.config import SIAConfig
    from sparse_align.stages import _resume_key, load_value_model, value_facts, value_head_dir
    from sparse_align.value.ship import SHIPPED

    vm = ValueModel.build(ValueModelConfig(head_hidden=8), backbone=tiny_model)
    vm.save(tmp_path / "vm")
    dest = export_head(tmp_path / "vm", tmp_path / "ship", {"val_pairwise_acc": 0.71})
    cfg = SIAConfig(run_dir=str(tmp_path / "run"), eval={"value_head": str(dest)})
    assert value_head_dir(cfg) == dest and value_facts(cfg)["val_pairwise_acc"] == 0.71  # the head's card
    ids = torch.tensor([[1, 20, 30]])
    assert torch.allclose(load_value_model(cfg, tiny_model)(ids), vm(ids))
    key = _resume_key(cfg)
    os.utime(dest / HEAD_FILE, ns=(1, 1))  # a copy on another machine: other mtime, same bytes
    assert _resume_key(cfg) == key
    import shutil

    shutil.copytree(dest, tmp_path / "moved")  # the same head elsewhere (run dir -> shipped copy): same key
    assert _resume_key(cfg.model_copy(update={"eval": cfg.eval.model_copy(update={"value_head": str(tmp_path / "moved")})})) == key
    data = bytearray((dest / HEAD_FILE).read_bytes())
    data[-1] ^= 1
    (dest / HEAD_FILE).write_bytes(bytes(data))
    assert _resume_key(cfg) != key  # another head: the partial arms are not reused
    assert value_head_dir(SIAConfig(eval={"value_head": "shipped"})) == SHIPPED
    gemma = SIAConfig(eval={"value_head": "shipped"}, value={"backbone": "gemma3-270m"})
    assert value_head_dir(gemma) == SHIPPED.parent / "gemma3_270m_vader_head"  # one shipped head per backbone
    with pytest.raises(ValueError, match="no shipped value head"):
        value_head_dir(SIAConfig(eval={"value_head": "shipped"}, value={"backbone": "qwen2.5-coder-0.5b-instruct"}))
    run = SIAConfig(run_dir=str(tmp_path / "run"))
    assert value_head_dir(run) == tmp_path / "run" / "value_model" and value_facts(run) == {}
