"""The command line: one grammar (`python -m sparse_align <verb> --config FILE [key=value ...]`), every verb
listed by --help, config keys listed by `<verb> --help`, result files where the config says."""

import os
from pathlib import Path

import pytest

from runtime.config import config_from_cli
from sparse_align.__main__ import VERBS, main
from sparse_align.config import JunctionConfig, SIAConfig, SteerEvalConfig

ALL_VERBS = ("distill", "train", "evaluate", "timing", "run", "junctions", "sweep", "posttrain", "powered", "powered-status",
             "run-powered", "export-head", "demo")


def test_help_lists_every_verb(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert [v.name for v in VERBS] == list(ALL_VERBS)
    for name in ALL_VERBS:
        assert f"  {name} " in out, name
    assert "usage: python -m sparse_align <verb> --config FILE" in out


def test_verb_help_lists_config_keys(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["distill", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for key in ("threads", "results_dir", "run_dir", "distill.num_prompts", "eval.num_prompts"):
        assert key in out, key


def test_unknown_verb_and_old_flags_are_refused(capsys):
    assert main(["no-such-verb"]) == 2
    assert "unknown verb" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # --scale and --threads are gone: config file and `threads=N`
        main(["distill", "--scale", "small"])
    assert exc.value.code == 2


def test_no_config_runs_on_the_defaults(monkeypatch):
    monkeypatch.delenv("LLMSYS_THREADS", raising=False)
    cfg = config_from_cli(SIAConfig, ["threads=2", "results_dir=/tmp/x"], description=None, example="")
    assert cfg.threads == 2 and cfg.results_dir == "/tmp/x"
    assert cfg.model_copy(update={"threads": 1, "results_dir": None}) == SIAConfig()
    assert SIAConfig().name == "default" and SIAConfig().threads == 1 and SIAConfig().results_dir is None
    monkeypatch.setenv("LLMSYS_THREADS", "3")
    assert SIAConfig().threads == 3  # the environment still sets the default


def test_results_land_in_the_configured_results_dir(tiny_model, tokenizer, tmp_path):
    from sparse_align import stages
    from sparse_align.pipeline import output_dir

    cfg = SIAConfig(name="cli-test", run_dir=str(tmp_path / "run"), results_dir=str(tmp_path / "out"),
                    eval=SteerEvalConfig(top_k=4, max_new_tokens=3), junctions=JunctionConfig(num_prompts=1, seeds=1))
    assert output_dir(cfg) == tmp_path / "out"
    stages.junctions(cfg, tiny_model, tokenizer)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sparse_align_junctions_cli-test.json",
                                                                      "sparse_align_junctions_cli-test.md"]
    default = Path(os.environ["LLMSYS_RESULTS_DIR"])  # tests/conftest.py: a scratch folder
    assert not (default / "sparse_align_junctions_cli-test.json").exists()
    assert output_dir(cfg.model_copy(update={"results_dir": None})) == default
