import pytest

from runtime.config import ConfigError, StrictModel, dump_config, load_config, parse_overrides


class Optim(StrictModel):
    lr: float = 1e-3
    warmup: int = 0


class TrainCfg(StrictModel):
    name: str = "run"
    steps: int = 10
    optim: Optim = Optim()


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: a\noptim:\n  lr: 0.1\n")
    cfg = load_config(TrainCfg, p, ["optim.warmup=5", "steps=7"])
    assert (cfg.name, cfg.steps, cfg.optim.lr, cfg.optim.warmup) == ("a", 7, 0.1, 5)
    assert load_config(TrainCfg, None) == TrainCfg()
    assert "warmup: 5" in dump_config(cfg)


def test_unknown_key_is_named(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("optim:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown key 'optim.lrr'") as e:
        load_config(TrainCfg, p)
    assert str(p) in str(e.value)


def test_bad_type_and_shapes(tmp_path):
    with pytest.raises(ConfigError, match="steps"):
        load_config(TrainCfg, None, ["steps=many"])
    p = tmp_path / "list.yaml"
    p.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(TrainCfg, p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(TrainCfg, tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["steps"])
