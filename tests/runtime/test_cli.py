"""runtime/cli.py: the one command grammar (`python -m <package> <verb> --config FILE [key=value ...]`)."""

from __future__ import annotations

import sys
import types

import pytest

from runtime.cli import Verb, run_verbs
from runtime.config import ConfigError, StrictModel, config_from_cli, config_keys


class Inner(StrictModel):
    lr: float = 1e-3


class Outer(StrictModel):
    name: str = "x"
    steps: int = 3
    inner: Inner = Inner()


@pytest.fixture
def verb_module(monkeypatch):
    """A throwaway module whose `main` records the config it parsed."""
    mod = types.ModuleType("_llmsys_test_verbs")
    mod.seen = []

    def main(argv):
        mod.seen.append(config_from_cli(Outer, argv, description="d", example="steps=2"))
        return 7

    mod.main = main
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    return mod


VERBS = (Verb("go", "_llmsys_test_verbs:main", "run it"), Verb("other", "_llmsys_test_verbs:main", "same"))


def test_help_lists_every_verb(capsys):
    assert run_verbs("python -m pkg", "The package.", VERBS, ["--help"]) == 0
    out = capsys.readouterr().out
    assert "go" in out and "run it" in out and "other" in out and "The package." in out


def test_no_verb_prints_usage_and_fails(capsys):
    assert run_verbs("python -m pkg", "doc", VERBS, []) == 2
    assert "verbs:" in capsys.readouterr().out


def test_unknown_verb_names_the_known_ones(capsys):
    assert run_verbs("python -m pkg", "doc", VERBS, ["nope"]) == 2
    assert "unknown verb 'nope'" in capsys.readouterr().err


def test_overrides_before_and_after_config(verb_module, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: fromfile\nsteps: 5\n")
    assert run_verbs("p", "d", VERBS, ["go", "inner.lr=0.5", "--config", str(cfg), "steps=9"]) == 7
    got = verb_module.seen[-1]
    assert (got.name, got.steps, got.inner.lr) == ("fromfile", 9, 0.5)


def test_bad_key_exits_2_with_the_key_named(verb_module, capsys):
    assert run_verbs("p", "d", VERBS, ["go", "stepz=1"]) == 2
    assert "unknown key 'stepz'" in capsys.readouterr().err


def test_verb_help_lists_config_keys(verb_module, capsys):
    with pytest.raises(SystemExit) as exc:
        run_verbs("p", "d", VERBS, ["go", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "inner.lr" in out and "steps" in out


def test_config_keys_flattens_nested_models():
    assert config_keys(Outer) == [("name", "'x'"), ("steps", "3"), ("inner.lr", "0.001")]


def test_config_error_is_a_value_error():
    with pytest.raises(ConfigError):
        config_from_cli(Outer, ["steps=notanint"], description=None, example="")


@pytest.mark.parametrize("pkg", ["runtime", "speculative", "sopr_rag", "sparse_align"])
def test_every_package_answers_help(pkg, capsys):
    """`python -m <package> --help` lists verbs (each package's __main__ goes through run_verbs)."""
    import importlib

    main = importlib.import_module(f"{pkg}.__main__").main
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "verbs:" in out


class Decode(StrictModel):
    mode: str = "tree"
    depth: int = 5


class WithSection(StrictModel):
    decode: Decode = Decode(mode="chain", depth=7)  # a section whose default instance differs from its class


def test_partial_override_keeps_the_section_default_instance():
    cfg = config_from_cli(WithSection, ["decode.depth=3"], description=None, example="")
    assert (cfg.decode.mode, cfg.decode.depth) == ("chain", 3)
    assert dict(config_keys(WithSection)) == {"decode.mode": "'chain'", "decode.depth": "7"}
