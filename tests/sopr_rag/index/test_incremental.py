"""Persistent index: incremental updates answer exactly like a fresh build, and touch only what changed."""

from __future__ import annotations

import json

import pytest

from sopr_rag.index import SopIndex
from sopr_rag.pipeline import SopragRetriever

EDITED = "liquid_cooling/coolant-leak-rack-manifold.md"
DELETED = "building_management/chiller-high-head-pressure.md"
ADDED = "airline_ground_ops/ground-power-unit-failure.md"
NEW_DOC = """# Ground Power Unit Failure at the Gate

Symptoms: aircraft reports AC BUS OFF while on ground power; GPU-3 fault lamp on.

## Steps
1. Ask the flight crew to start the APU or accept battery power.
2. Disconnect the GPU-3 cable from the aircraft receptacle.
3. If GPU-3 shows an overcurrent fault, then tag it out of service and connect the spare GPU.
4. Report the failure to ground equipment maintenance.
"""


def results(index, queries):
    r = SopragRetriever(index)
    return {q["id"]: r.search(q["query"], 5) for q in queries}


def assert_same_answers(a, b):
    assert a.keys() == b.keys()
    for qid in a:
        assert [h.doc_id for h in a[qid].hits] == [h.doc_id for h in b[qid].hits], qid
        assert [h.score for h in a[qid].hits] == pytest.approx([h.score for h in b[qid].hits], abs=1e-6), qid
        assert [h.steps for h in a[qid].hits] == [h.steps for h in b[qid].hits], qid


def test_incremental_update_equals_fresh_build(corpus_copy, tmp_path, hashing_embedder, sop_queries):
    inc_dir, fresh_dir = tmp_path / "inc", tmp_path / "fresh"
    SopIndex.build(corpus_copy, inc_dir, hashing_embedder)
    (inc_dir / "baselines").mkdir()  # another owner's data beside the index must survive updates
    (inc_dir / "baselines" / "keep.txt").write_text("x")

    path = corpus_copy / EDITED
    path.write_text(path.read_text().replace("3 bar for 10 minutes", "4 bar for 15 minutes"))
    (corpus_copy / DELETED).unlink()
    (corpus_copy / ADDED).write_text(NEW_DOC)
    (corpus_copy / "broken.md").write_text("   ")

    index, report = SopIndex.build(corpus_copy, inc_dir, hashing_embedder)
    assert (report.added, report.changed, report.removed) == ([ADDED], [EDITED], [DELETED])
    assert report.skipped == {"broken.md": "empty document"}
    tel = report.telemetry
    assert tel["unchanged"] == 11 and tel["texts_embedded"] < 80  # two documents' worth, not thirteen
    assert (inc_dir / "baselines" / "keep.txt").exists()
    assert len(list((inc_dir / "docs").glob("*.json"))) == len(index.docs) == 13  # stale artifacts deleted

    fresh, _ = SopIndex.build(corpus_copy, fresh_dir, hashing_embedder)
    assert index.manifest["docs"] == fresh.manifest["docs"]
    queries = sop_queries + [{"id": "new", "query": "GPU-3 overcurrent fault at the gate, what next?"}]
    inc_answers, fresh_answers = results(index, queries), results(fresh, queries)
    assert_same_answers(inc_answers, fresh_answers)
    assert inc_answers["new"].hits[0].doc_id == ADDED
    assert all(DELETED not in [h.doc_id for h in r.hits] for r in inc_answers.values())
    assert_same_answers(results(SopIndex.load(inc_dir, hashing_embedder), queries), fresh_answers)


def test_rerun_on_unchanged_corpus_touches_nothing(corpus_copy, tmp_path, hashing_embedder):
    SopIndex.build(corpus_copy, tmp_path / "idx", hashing_embedder)
    before = (tmp_path / "idx" / "docs").stat().st_mtime_ns
    bm25_before = (tmp_path / "idx" / "cards_bm25").stat().st_mtime_ns
    _, report = SopIndex.build(corpus_copy, tmp_path / "idx", hashing_embedder)
    assert report.added == report.changed == report.removed == []
    assert report.telemetry["texts_embedded"] == 0
    assert (tmp_path / "idx" / "docs").stat().st_mtime_ns == before
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert "cards_bm25" not in manifest["telemetry"]["seconds"]  # nothing rebuilt
    assert (tmp_path / "idx" / "cards_bm25").stat().st_mtime_ns == bm25_before


def test_load_reports_a_missing_index(tmp_path):
    with pytest.raises(FileNotFoundError, match="no SOPRAG index"):
        SopIndex.load(tmp_path)


def test_index_built_by_other_code_is_rebuilt(corpus_copy, tmp_path, hashing_embedder, monkeypatch):
    """Per-document artifacts depend on the parser/expert code: a code change must not reuse them."""
    import sopr_rag.index.store as store

    first, _ = SopIndex.build(corpus_copy, tmp_path / "idx", hashing_embedder)
    monkeypatch.setattr(store, "code_fingerprint", lambda: "other-parser-version")
    index, report = SopIndex.build(corpus_copy, tmp_path / "idx", hashing_embedder)
    assert sorted(report.added) == sorted(first.procedures) and report.telemetry["texts_embedded"] > 0
    assert json.loads((tmp_path / "idx" / "manifest.json").read_text())["code"] == "other-parser-version"
