import json

import pytest

from sopr_rag.eval.queries import load_queries


def test_bad_lines_are_counted_skips(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text("\n".join([
        json.dumps({"id": 1, "query": "pump cavitates", "gold_docs": ["a.md"], "intent": "causal", "style": "x"}),
        "{not json",
        json.dumps({"id": 2, "query": "", "gold_docs": ["a.md"]}),
        json.dumps({"id": 3, "query": "ok", "gold_docs": []}),
        json.dumps({"id": 1, "query": "dup id", "gold_docs": ["a.md"]}),
        "",
    ]), encoding="utf-8")
    qs = load_queries(p)
    assert [q.id for q in qs.queries] == [1]
    assert qs.queries[0].model_extra == {"style": "x"}
    assert sorted(qs.skipped) == [2, 3, 4, 5]
    assert "duplicate" in qs.skipped[5] and "gold_docs" in qs.skipped[4]
    with pytest.raises(FileNotFoundError):
        load_queries(tmp_path / "missing.jsonl")


def test_fixture_queries_all_valid(sop_queries, tmp_path):
    p = tmp_path / "fx.jsonl"
    p.write_text("\n".join(json.dumps(q) for q in sop_queries), encoding="utf-8")
    qs = load_queries(p)
    assert len(qs.queries) == len(sop_queries) and not qs.skipped
