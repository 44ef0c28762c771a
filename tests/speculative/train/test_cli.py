"""`python -m speculative`: every verb listed and importable; `train` takes the distributed path exactly when
the run asks for it (distributed keys, several ranks, or an out_dir started on that path)."""

from __future__ import annotations

import importlib

import pytest

from runtime.paths import repo_root

CONFIGS = repo_root() / "experiments" / "configs" / "speculative"
VERB_NAMES = ["regenerate", "prepare", "train", "export", "evaluate", "bundle", "model-card", "profile",
              "profile-step", "vllm-check", "recipe", "bench-train", "bench-specforge", "bench-parallel", "demo", "decode-demo"]


def test_help_lists_every_verb(capsys):
    from speculative.__main__ import VERBS, main

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert [v.name for v in VERBS] == VERB_NAMES
    for verb in VERBS:
        assert f"  {verb.name} " in out, verb.name
        module, func = verb.entry.split(":")
        assert callable(getattr(importlib.import_module(module), func)), verb.entry


def test_a_verb_help_lists_its_config_keys(capsys):
    from speculative.__main__ import main

    with pytest.raises(SystemExit) as stop:
        main(["export", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "run_dir" in out and "required" in out and "step" in out


def test_a_bad_override_exits_2_naming_the_key(capsys):
    from speculative.__main__ import main

    assert main(["export", "run_dir=x", "stepp=3"]) == 2
    assert "unknown key 'stepp'" in capsys.readouterr().err


@pytest.fixture
def paths(monkeypatch):
    """Which training path `speculative train` takes, with the training itself stubbed."""
    import speculative.train.run as run

    taken: list[tuple[str, object]] = []
    monkeypatch.setattr(run, "train", lambda cfg: taken.append(("plain", cfg)))
    monkeypatch.setattr(run, "train_dist", lambda cfg: taken.append(("dist", cfg)) or 0)
    monkeypatch.delenv("WORLD_SIZE", raising=False)

    def path(*argv: str) -> tuple[str, object]:
        from speculative.__main__ import main

        taken.clear()
        assert main(["train", *argv]) == 0
        (res,) = taken
        return res

    return path


def test_train_takes_the_distributed_path_exactly_when_asked(paths, tmp_path, monkeypatch):
    from speculative.parallel.config import DistTrainConfig
    from speculative.train.config import DraftTrainConfig

    out = f"out_dir={tmp_path / 'run'}"
    kind, cfg = paths(out, "max_steps=3")
    assert kind == "plain" and type(cfg) is DraftTrainConfig and cfg.max_steps == 3
    kind, cfg = paths("--config", str(CONFIGS / "tiny_random.yaml"), out)
    assert kind == "plain" and type(cfg) is DraftTrainConfig and cfg.ttt_length == 3
    for dist_keys in (["target_kind=hf"], ["offline_dir=/shards"], ["parallel.fsdp=false"]):
        kind, cfg = paths(out, *dist_keys)
        assert kind == "dist" and isinstance(cfg, DistTrainConfig), dist_keys
    kind, cfg = paths("--config", str(CONFIGS / "offline_train_smollm2.yaml"), out)  # keys in the file
    assert kind == "dist" and cfg.target_kind == "offline"
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun
    assert paths(out)[0] == "dist"
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert paths(out)[0] == "plain"


def test_train_resumes_an_out_dir_on_the_path_it_was_started_on(paths, tmp_path):
    from runtime.config import dump_config
    from speculative.parallel.config import DistTrainConfig
    from speculative.train.config import DraftTrainConfig

    dist_run, plain_run = tmp_path / "dist", tmp_path / "plain"
    for run, cls in ((dist_run, DistTrainConfig), (plain_run, DraftTrainConfig)):
        run.mkdir()
        (run / "config.yaml").write_text(dump_config(cls(out_dir=str(run))))
    assert paths(f"out_dir={dist_run}")[0] == "dist"  # a DistTrainConfig run: its stored keys would be refused
    assert paths(f"out_dir={plain_run}")[0] == "plain"
