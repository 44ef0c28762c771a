"""Training settings out of range fail at load time, naming the field (never trained on silently)."""

from __future__ import annotations

import pytest

from runtime.config import ConfigError, load_config
from runtime.paths import repo_root
from speculative.parallel.config import DistTrainConfig
from speculative.train.config import DraftTrainConfig


@pytest.mark.parametrize("override, field", [
    ("data.max_length=-10", "max_length"), ("optim.lr=-1", "lr"), ("optim.betas=[0.9,1.5]", "betas"),
    ("ttt_length=0", "ttt_length"), ("optim.min_lr_ratio=2", "min_lr_ratio"), ("data.limit=0", "limit"),
])
def test_out_of_range_settings_are_refused_by_name(override, field):
    with pytest.raises(ConfigError, match=field):
        load_config(DraftTrainConfig, None, [override])


def test_shipped_recipe_config_loads():
    cfg = load_config(DistTrainConfig, repo_root() / "experiments/configs/speculative/bundle_train_smollm2.yaml",
                      ["offline_dir=/nowhere"])
    assert cfg.ttt_length == 3 and cfg.data.draft_vocab_size == 8192 and cfg.optim.min_lr_ratio == 0.1
