"""Fault injection for SOPRAG: damaged index files repaired by re-indexing, symlinks out of the corpus,
per-document budgets, bad CLI settings, and hostile HTTP bodies (NaN, surrogates, huge, coerced types)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from fastapi.testclient import TestClient

from sopr_rag.__main__ import main
from sopr_rag.api import create_app
from sopr_rag.config import SopragConfig
from sopr_rag.index import SopIndex, SopIndexError
from sopr_rag.ingest.loader import IngestLimits
from sopr_rag.pipeline import SopragRetriever
from sopr_rag.retrievers import make_retriever

DOC = "datacenter/pdu-breaker-trip.md"
QUERIES = ["PDU breaker tripped on rack A", "coolant leak at the manifold", "generator will not start"]


def _answers(index):
    r = SopragRetriever(index)
    return {q: [(h.doc_id, round(h.score, 6)) for h in r.search(q, 5).hits] for q in QUERIES}


def _truncate(path, keep=20):
    path.write_bytes(path.read_bytes()[:keep])


@pytest.fixture()
def built(corpus_copy, tmp_path, hashing_embedder):
    idx = tmp_path / "idx"
    index, _ = SopIndex.build(corpus_copy, idx, hashing_embedder)
    return corpus_copy, idx, index


def _artifact(index, doc_id, suffix):
    return index.index_dir / "docs" / f"{index.manifest['docs'][doc_id]['key']}{suffix}"


# ----------------------------------------------------------------------------- index repair
@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_truncated_artifact_is_named_then_repaired_by_reindexing(built, hashing_embedder, suffix):
    corpus, idx, index = built
    expected = _answers(index)
    bad = _artifact(index, DOC, suffix)
    _truncate(bad)
    with pytest.raises(SopIndexError, match=bad.name) as err:
        SopIndex.load(idx, hashing_embedder)
    assert "re-run" in str(err.value)
    repaired, report = SopIndex.build(corpus, idx, hashing_embedder)
    assert list(report.repaired) == [DOC] and report.changed == [DOC] and report.telemetry["unchanged"] == 12
    assert _answers(SopIndex.load(idx, hashing_embedder)) == expected == _answers(repaired)


def test_same_size_corruption_is_caught_by_the_manifest_checksum(built, hashing_embedder):
    corpus, idx, index = built
    bad = _artifact(index, DOC, ".json")
    raw = bytearray(bad.read_bytes())
    i = raw.index(b"breaker")
    raw[i:i + 7] = b"BREAKER"  # still valid JSON of the same size
    bad.write_bytes(bytes(raw))
    with pytest.raises(SopIndexError, match="sha256"):
        SopIndex.load(idx, hashing_embedder)
    _, report = SopIndex.build(corpus, idx, hashing_embedder)
    assert list(report.repaired) == [DOC]
    SopIndex.load(idx, hashing_embedder)


def test_truncated_manifest_is_named_and_rebuilt(built, hashing_embedder):
    corpus, idx, index = built
    expected = _answers(index)
    _truncate(idx / "manifest.json", keep=300)
    with pytest.raises(SopIndexError, match="manifest.json: unreadable"):
        SopIndex.load(idx, hashing_embedder)
    _, report = SopIndex.build(corpus, idx, hashing_embedder)
    assert len(report.added) == 13  # nothing could be trusted: every document rebuilt
    assert _answers(SopIndex.load(idx, hashing_embedder)) == expected
    assert len(list((idx / "docs").glob("*.npz"))) == 13  # no orphans left behind


def test_damaged_card_indexes_are_rebuilt(built, hashing_embedder):
    corpus, idx, index = built
    expected = _answers(index)
    _truncate(idx / "cards_dense" / "index.faiss")
    _truncate(idx / "cards_bm25" / "meta.json")
    assert _answers(SopIndex.load(idx, hashing_embedder)) == expected  # rebuilt in memory, not fatal
    _, report = SopIndex.build(corpus, idx, hashing_embedder)
    assert {"cards_dense", "cards_bm25"} <= set(report.repaired)
    fresh = SopIndex.load(idx, hashing_embedder)
    assert fresh.damaged == {} and _answers(fresh) == expected


def test_damaged_baselines_are_rebuilt_on_open(built, hashing_embedder):
    _, idx, index = built
    methods = ("bm25", "bm25-chunk", "dense", "graph")
    before = {m: [h.doc_id for h in make_retriever(m, index, embedder=hashing_embedder).search(QUERIES[0], 5).hits]
              for m in methods}
    base = idx / "baselines"
    _truncate(base / "bm25" / "manifest.json")
    _truncate(base / "bm25-chunk" / "bm25" / "meta.json")
    _truncate(base / "dense" / "faiss" / "index.faiss")
    _truncate(base / "graph" / "extract.json")
    after = {m: [h.doc_id for h in make_retriever(m, index, embedder=hashing_embedder).search(QUERIES[0], 5).hits]
             for m in methods}
    assert after == before


# ----------------------------------------------------------------------------- ingest
def test_symlink_outside_the_corpus_is_skipped_and_reported(corpus_copy, tmp_path, hashing_embedder):
    secret = tmp_path / "outside" / "secret.md"
    secret.parent.mkdir()
    secret.write_text("# Secret\n\n## Steps\n1. Read the zanzibarquux password file.\n")
    (corpus_copy / "leak.md").symlink_to(secret)
    (corpus_copy / "leakdir").symlink_to(secret.parent, target_is_directory=True)
    (corpus_copy / "alias.md").symlink_to(corpus_copy / DOC)  # inside the corpus: fine
    index, report = SopIndex.build(corpus_copy, tmp_path / "idx", hashing_embedder)
    assert "symlink" in report.skipped["leak.md"] and "symlink" in report.skipped["leakdir"]
    assert report.telemetry["skipped"] == 2
    assert "leak.md" not in index.docs and "alias.md" in index.docs
    hits = SopragRetriever(index).search("zanzibarquux password", 20).hits
    assert all("zanzibarquux" not in json.dumps(h.steps) for h in hits)


def test_per_document_budget_skips_with_a_reason(corpus_copy, tmp_path, hashing_embedder):
    big = corpus_copy / "huge.md"
    big.write_text("# Huge\n\n## Steps\n" + "".join(f"{i}. Check pump P-{i} and reset it.\n" for i in range(1, 400)))
    _, report = SopIndex.build(corpus_copy, tmp_path / "idx", hashing_embedder,
                               limits=IngestLimits(max_doc_bytes=100_000, max_steps=300))
    assert "ingest.max_steps" in report.skipped["huge.md"]
    _, report = SopIndex.build(corpus_copy, tmp_path / "idx2", hashing_embedder,
                               limits=IngestLimits(max_doc_bytes=5_000, max_steps=300))
    assert "ingest.max_doc_bytes" in report.skipped["huge.md"]


def test_stemming_is_memoised_so_large_documents_index_in_seconds():
    """A 1.8 MB SOP took minutes: every word went through pure-Python Snowball stemming, again and again."""
    from sopr_rag.retrieval import lexical

    lexical._stem.cache_clear()
    lexical.tokenize("pumps pumping pumped breaker breakers " * 2000)
    assert lexical._stem.cache_info().misses <= 5


def test_empty_corpus_is_refused(tmp_path, capsys, hashing_embedder):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SopIndexError, match="no SOP files"):
        SopIndex.build(tmp_path / "empty", tmp_path / "idx", hashing_embedder)
    assert not (tmp_path / "idx").exists()
    assert main(["index", str(tmp_path / "empty"), "--out", str(tmp_path / "idx")]) == 2
    assert "no SOP files" in capsys.readouterr().err


# ----------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("top_k", ["-1", "0", "abc", "1001"])
def test_cli_top_k_out_of_range_is_refused(minilm_index, tmp_path, top_k, capsys):
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "a", "query": "generator will not start"}\n')
    for argv in (["search", "--index", str(minilm_index.index_dir), "--queries", str(queries), "--out",
                  str(tmp_path / "r.jsonl")], ["ask", "--index", str(minilm_index.index_dir), "generator?"]):
        with pytest.raises(SystemExit) as e:
            main([*argv, "--top-k", top_k])
        assert e.value.code == 2
        assert "--top-k" in capsys.readouterr().err
    assert not (tmp_path / "r.jsonl").exists()


def test_cli_null_or_non_string_queries_are_skipped_not_searched(minilm_index, tmp_path, capsys):
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "a", "query": null}\n{"id": "b", "query": 5}\n{"id": null, "query": "x"}\n'
                       '{"id": true, "query": "x"}\n{"id": "c", "query": "generator will not start"}\n')
    out = tmp_path / "r.jsonl"
    assert main(["search", "--index", str(minilm_index.index_dir), "--queries", str(queries), "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["skipped_lines"] == 4
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["c"]
    assert main(["ask", "--index", str(minilm_index.index_dir), "   "]) == 2


# ----------------------------------------------------------------------------- HTTP
@pytest.fixture(scope="module")
def client(minilm_index):
    return TestClient(create_app(minilm_index.index_dir, index=minilm_index), raise_server_exceptions=False)


def _raw(client, path, body: bytes, **headers):
    return client.post(path, content=body, headers={"content-type": "application/json", **headers})


@pytest.mark.parametrize("body", [
    b'{"query": "pump", "top_k": NaN}',
    b'{"query": "pump", "top_k": Infinity}',
    b'{"query": "pump", "top_k": -Infinity}',
    b'{"query": "pump", "top_k": 1e400}',
    b'{"query": NaN}',
    b'{"query": "pump \\ud800 cavitation"}',
    b'{"query": "pump", "\\udfff": 1}',
    b'{"query": "\xff\xfe"}',
    b'{"query": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"query": "pump", "top_k": ' + b"9" * 5000 + b"}",
])
@pytest.mark.parametrize("path", ["/search", "/ask"])
def test_hostile_json_is_a_4xx_never_a_500(client, body, path):
    if path == "/ask":
        body = body.replace(b'"query"', b'"question"')
    r = _raw(client, path, body)
    assert 400 <= r.status_code < 500, r.text[:300]


@pytest.mark.parametrize("payload,field", [
    ({"query": "pump", "top_k": "5"}, "top_k"),
    ({"query": "pump", "top_k": True}, "top_k"),
    ({"query": "pump", "top_k": 5.0}, "top_k"),
    ({"query": "   "}, "query"),
    ({"query": None}, "query"),
    ({"query": 5}, "query"),
])
def test_search_types_are_strict_and_errors_name_the_field(client, payload, field):
    r = client.post("/search", json=payload)
    assert r.status_code == 422
    assert any(field in e["loc"] for e in r.json()["detail"])
    assert "input" not in r.text  # the submitted values are never echoed


@pytest.mark.parametrize("payload", [{"question": "pump", "generate": 0}, {"question": "pump", "generate": "true"},
                                     {"question": "pump", "top_k": 0}, {"question": "pump", "top_k": 21}])
def test_ask_types_are_strict(client, payload):
    assert client.post("/ask", json=payload).status_code == 422


def test_huge_bodies_get_413_without_echo(client):
    big = json.dumps({"query": "x" * 5_000_000}).encode()
    r = _raw(client, "/search", big)
    assert r.status_code == 413 and len(r.content) < 200
    chunked = client.post("/search", content=iter([b'{"query": "', b"x" * 100_000, b'"}']),
                          headers={"content-type": "application/json"})  # no Content-Length: counted as read
    assert chunked.status_code == 413 and len(chunked.content) < 200
    ok = client.post("/search", json={"query": "generator will not start", "top_k": 1})
    assert ok.status_code == 200


def _slow_generation(monkeypatch, seconds):
    def slow(self, question, steps):
        time.sleep(seconds)
        return "generated"

    monkeypatch.setattr(SopragRetriever, "grounded_answer", slow)


def test_ask_generation_does_not_block_search(minilm_index, monkeypatch):
    _slow_generation(monkeypatch, 3.0)
    app_client = TestClient(create_app(minilm_index.index_dir, index=minilm_index))
    result = {}

    def ask():
        t0 = time.perf_counter()
        result["ask"] = app_client.post("/ask", json={"question": "generator will not start", "generate": True})
        result["ask_s"] = time.perf_counter() - t0

    worker = threading.Thread(target=ask)
    worker.start()
    time.sleep(0.5)  # the generation is now running
    t0 = time.perf_counter()
    r = app_client.post("/search", json={"query": "coolant leak at the manifold", "top_k": 3})
    search_s = time.perf_counter() - t0
    worker.join()
    assert r.status_code == 200 and result["ask"].status_code == 200
    assert result["ask"].json()["answer"] == "generated"
    assert search_s < 2.0 < result["ask_s"]  # /search did not wait for the generation


def test_ask_generation_queue_and_timeout(minilm_index, monkeypatch):
    _slow_generation(monkeypatch, 2.0)
    cfg = SopragConfig.model_validate({"serve": {"generate_queue": 1, "generate_timeout_s": 0.5}})
    app_client = TestClient(create_app(minilm_index.index_dir, cfg, index=minilm_index))
    body = {"question": "generator will not start", "generate": True}
    first = app_client.post("/ask", json=body)
    assert first.status_code == 504 and "0.5 s" in first.json()["detail"]
    busy = app_client.post("/ask", json=body)  # the timed-out job still holds the only slot
    assert busy.status_code == 503 and "busy" in busy.json()["detail"]
    assert app_client.post("/ask", json={"question": "generator will not start"}).status_code == 200
    time.sleep(2.0)
    _slow_generation(monkeypatch, 0.0)
    assert app_client.post("/ask", json=body).status_code == 200
