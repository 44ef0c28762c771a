"""A user's JSONL prompt file as a benchmark: good lines become items, bad lines are skipped and counted."""

import json

import pytest

from speculative.evaluate.benchmarks import load_prompt_file

GOOD = [{"id": "a", "prompt": "Hello there"}, {"id": 7, "turns": ["First question", "And a follow-up"]},
        {"id": "c", "prompt": "Third", "category": "extra keys are ignored"}]
BAD = [
    ("{not json", "not JSON"),
    ('["a list"]', "not a JSON object"),
    ('{"prompt": "no id"}', "missing or invalid id"),
    ('{"id": true, "prompt": "bool id"}', "missing or invalid id"),
    ('{"id": "a", "prompt": "dup"}', "duplicate id"),
    ('{"id": "x"}', "needs exactly one of"),
    ('{"id": "y", "prompt": "p", "turns": ["t"]}', "needs exactly one of"),
    ('{"id": "z", "prompt": "   "}', "empty prompt"),
    ('{"id": "w", "turns": []}', "empty prompt"),
    ('{"id": "v", "turns": ["ok", 3]}', "empty prompt"),
]


def _write(tmp_path, lines):
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_good_and_bad_lines_are_parsed_and_counted(tmp_path, caplog):
    lines = [json.dumps(GOOD[0]), BAD[0][0], "", json.dumps(GOOD[1])] + [b for b, _ in BAD[1:]] + [json.dumps(GOOD[2])]
    with caplog.at_level("WARNING"):
        pf = load_prompt_file(_write(tmp_path, lines))
    assert [(i.id, i.turns) for i in pf.items] == [("a", ["Hello there"]), ("7", ["First question", "And a follow-up"]),
                                                  ("c", ["Third"])]
    assert pf.lines == len(lines) - 1  # the blank line is not counted
    assert sum(pf.skipped.values()) == len(BAD)
    for _, reason in BAD:
        assert any(r.startswith(reason) for r in pf.skipped), reason
    assert pf.skipped["not JSON"] == 1 and pf.skipped["duplicate id"] == 1
    assert pf.examples[0] == "line 2: not JSON" and len(pf.examples) == 5
    summary = pf.summary()
    assert summary["items"] == 3 and summary["skipped"] == len(BAD) and summary["lines"] == pf.lines
    assert "skipped 10 of 13 lines" in caplog.text


def test_limit_counts_valid_items_only(tmp_path):
    lines = [BAD[0][0]] + [json.dumps({"id": i, "prompt": f"p{i}"}) for i in range(5)]
    pf = load_prompt_file(_write(tmp_path, lines), limit=2)
    assert [i.id for i in pf.items] == ["0", "1"] and pf.skipped == {"not JSON": 1}


def test_a_file_without_usable_lines_or_missing_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no usable prompt among 2 lines"):
        load_prompt_file(_write(tmp_path, [BAD[0][0], BAD[5][0]]))
    with pytest.raises(FileNotFoundError, match="prompt file not found"):
        load_prompt_file(tmp_path / "missing.jsonl")


def test_eval_config_takes_prompt_files_and_rejects_clashing_names(tmp_path):
    from runtime.config import ConfigError, load_config
    from speculative.evaluate.config import SpecEvalConfig

    cfg = load_config(SpecEvalConfig, None, [f"prompt_files.mine.path={tmp_path / 'p.jsonl'}", "prompt_files.mine.limit=3"])
    assert cfg.prompt_files["mine"].limit == 3
    with pytest.raises(ConfigError, match="clash"):
        load_config(SpecEvalConfig, None, [f"prompt_files.mtbench.path={tmp_path / 'p.jsonl'}"])
