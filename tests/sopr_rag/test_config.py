from __future__ import annotations

import pytest

from runtime.config import ConfigError, load_config
from runtime.paths import repo_root
from sopr_rag.config import SopragConfig


def test_shipped_yaml_matches_the_builtin_defaults():
    assert load_config(SopragConfig, repo_root() / "experiments/configs/soprag/default.yaml") == SopragConfig()


def test_overrides_are_validated():
    cfg = load_config(SopragConfig, None, ["fusion.method=rrf", "stage1.top_m=5"])
    assert cfg.fusion.method == "rrf" and cfg.stage1.top_m == 5
    with pytest.raises(ConfigError, match="top_m"):
        load_config(SopragConfig, None, ["stage1.top_m=0"])
