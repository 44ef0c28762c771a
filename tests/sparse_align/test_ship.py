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
