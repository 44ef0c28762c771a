from __future__ import annotations

import pytest

from runtime.config import ConfigError, load_config
from runtime.paths import repo_root
from sopr_rag.config import SopragConfig


def test_shipped_yaml_matches_the_builtin_defaults():
    assert load_config(SopragConfig, repo_root() / "experiments/configs/sopr_rag/default.yaml") == SopragConfig()


def test_overrides_are_validated():
    cfg = load_config(SopragConfig, None, ["fusion.method=rrf", "stage1.top_m=5"])
    assert cfg.fusion.method == "rrf" and cfg.stage1.top_m == 5
    with pytest.raises(ConfigError, match="top_m"):
        load_config(SopragConfig, None, ["stage1.top_m=0"])


def test_partial_voter_override_keeps_the_other_defaults():
    cfg = load_config(SopragConfig, None, ["fusion.voters.card_dense=0", "fusion.expert_votes.flow=0.5"])
    assert cfg.fusion.voters == {"bm25": 1.0, "dense": 1.0, "card_dense": 0.0, "card_bm25": 0.0}
    assert cfg.fusion.expert_votes == {"entity": 1.0, "causal": 1.0, "flow": 0.5}
    with pytest.raises(ValueError):
        load_config(SopragConfig, None, ["fusion.voters.bm25=-1"])
