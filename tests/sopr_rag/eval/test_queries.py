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


@pytest.mark.parametrize("name", ["openshift.heldout", "openshift.plain", "openshift.symptom", "prometheus.devsym"])
def test_committed_selection_sets_load_whole(name):
    """The hand-written query sets the evaluation targets read: every line valid, ids unique, no gold shared
    between the OpenShift sets (each set's golds were picked to avoid the others', openshift.sets.README.md)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[3] / "experiments" / "configs" / "sopr_rag"
    qs = load_queries(root / f"{name}.jsonl")
    assert qs.queries and not qs.skipped
    assert all(q.intent in {"causal", "flow", "entity"} for q in qs.queries)
    if name.startswith("openshift."):
        others = {g for other in ("heldout", "plain", "symptom") if f"openshift.{other}" != name
                  for q in load_queries(root / f"openshift.{other}.jsonl").queries for g in q.gold_docs}
        assert not {g for q in qs.queries for g in q.gold_docs} & others
