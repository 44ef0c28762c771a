"""`python -m sopr_rag index|search|ask` through main()."""

from __future__ import annotations

import json
import shutil

import pytest

from sopr_rag.cli import main


def test_index_command_builds_then_updates(tmp_path, sop_corpus, capsys):
    corpus = tmp_path / "c"
    corpus.mkdir()
    for rel in ("datacenter/pdu-breaker-trip.md", "building_management/fire-alarm-elevator-recall.txt"):
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sop_corpus / rel, corpus / rel)
    assert main(["index", str(corpus), "--out", str(tmp_path / "idx")]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 2
    (corpus / "datacenter/pdu-breaker-trip.md").unlink()
    assert main(["index", str(corpus), "--out", str(tmp_path / "idx")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["added"], out["removed"]) == (0, 1)


def test_search_writes_the_result_schema_and_skips_bad_lines(minilm_index, tmp_path, capsys):
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "a", "query": "GEN-1 failed to start", "gold_docs": []}\nnot json\n'
                       '{"query": "no id"}\n{"id": 7, "query": "freeze stat trip on the AHU"}\n')
    out = tmp_path / "r.jsonl"
    rc = main(["search", "--index", str(minilm_index.index_dir), "--queries", str(queries), "--top-k", "4",
               "--out", str(out)])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["queries"] == 2 and summary["skipped_lines"] == 2
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in lines] == ["a", 7]
    for r in lines:
        assert set(r) == {"id", "ranked_docs", "scores", "expert_weights", "steps"}
        assert len(r["ranked_docs"]) == len(r["scores"]) == 4
    assert lines[1]["ranked_docs"][0] == "building_management/ahu-freeze-stat-trip.md"


def test_search_dispatches_baselines(minilm_index, tmp_path, capsys):
    pytest.importorskip("sopr_rag.baselines")
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "a", "query": "freeze stat trip on the AHU"}\n')
    out = tmp_path / "r.jsonl"
    assert main(["search", "--index", str(minilm_index.index_dir), "--queries", str(queries), "--out", str(out),
                 "--method", "bm25"]) == 0
    assert json.loads(out.read_text())["ranked_docs"][0] == "building_management/ahu-freeze-stat-trip.md"


def test_ask_prints_citations(minilm_index, capsys):
    rc = main(["ask", "--index", str(minilm_index.index_dir), "pump is cavitating after the filter swap, what next?"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "liquid_cooling/cdu-pump-cavitation-after-filter-change.md#" in text


def test_bad_config_override_is_a_clear_error(minilm_index, capsys):
    rc = main(["ask", "--index", str(minilm_index.index_dir), "x", "--set", "fusion.nope=1"])
    assert rc == 2 and "unknown key 'fusion.nope'" in capsys.readouterr().err
