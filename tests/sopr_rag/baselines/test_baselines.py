"""Baselines over the fixture corpus: agreement with references, persistence, incremental sync."""

import dataclasses
from pathlib import Path

import pytest

from sopr_rag.baselines import BaselineConfig
from sopr_rag.bench.cli import load_procedures
from sopr_rag.eval.metrics import mean, reciprocal_rank
from sopr_rag.retrieval.chunking import chunk_procedure
from sopr_rag.retrieval.embedder import HashingEmbedder
from sopr_rag.retrieval.fusion import rrf
from sopr_rag.retrieval.lexical import BM25Index
from sopr_rag.retrievers import BASELINES, make_retriever


@dataclasses.dataclass
class FakeIndex:
    procedures: dict
    index_dir: Path


class CountingEmbedder(HashingEmbedder):
    def __init__(self):
        super().__init__(64)
        self.texts = 0

    def __call__(self, texts):
        self.texts += len(texts)
        return super().__call__(texts)


@pytest.fixture(scope="module")
def procs(sop_corpus):
    return load_procedures(str(sop_corpus))


@pytest.fixture()
def index(procs, tmp_path):
    return FakeIndex(dict(procs), tmp_path / "idx")


def test_every_method_finds_easy_fixture_queries(index, sop_queries):
    emb = HashingEmbedder(64)
    easy = [q for q in sop_queries if q["difficulty"] == "easy"]
    for method in BASELINES:
        r = make_retriever(method, index, embedder=emb)
        mrr = mean([reciprocal_rank([h.doc_id for h in r.search(q["query"], 10).hits], set(q["gold_docs"]))
                    for q in easy])
        assert mrr >= (0.5 if method == "graph" else 0.7), (method, mrr)
        res = r.search(easy[0]["query"], 3)
        assert len(res.hits) <= 3 and res.hits[0].steps  # top hit carries its ordered steps
    with pytest.raises(ValueError, match="unknown method"):
        make_retriever("nope", index)


def test_chunk_bm25_scores_a_document_by_its_best_chunk(index):
    cfg = BaselineConfig()
    ref = BM25Index()
    passages = [p for d in sorted(index.procedures) for p in chunk_procedure(index.procedures[d], cfg.chunk_words,
                                                                               cfg.chunk_overlap)]
    ref.build([p.passage_id for p in passages], [p.text for p in passages])
    query = "coolant leak at the rack manifold, drip tray"
    best = {}
    for pid, s in ref.search(query, 1000):
        best.setdefault(pid.rsplit("#", 1)[0], s)
    got = make_retriever("bm25-chunk", index).rank(query)
    assert dict(got) == pytest.approx(best)


def test_hybrid_is_rrf_of_lexical_and_dense(index):
    emb = HashingEmbedder(64)
    query = "generator failed to start while on battery"
    lex = [d for d, _ in make_retriever("bm25", index).rank(query)]
    den = [d for d, _ in make_retriever("dense", index, embedder=emb).rank(query)]
    got, want = make_retriever("hybrid", index, embedder=emb).rank(query), rrf([lex, den])
    assert [d for d, _ in got] == [d for d, _ in want]
    assert [s for _, s in got] == pytest.approx([s for _, s in want])


def test_dense_sync_embeds_only_changed_documents(index, procs):
    emb = CountingEmbedder()
    make_retriever("dense", index, embedder=emb)
    first = emb.texts
    assert first > len(procs)
    emb.texts = 0
    make_retriever("dense", index, embedder=emb)  # reopen, nothing changed: loads, embeds nothing
    assert emb.texts == 0
    doc = sorted(procs)[0]
    changed = dataclasses.replace(procs[doc], text=procs[doc].text + "\n\nExtra zebra-stripe valve note.",
                                  content_hash="changed")
    gone = sorted(procs)[1]
    index.procedures = {**{d: p for d, p in procs.items() if d != gone}, doc: changed}
    r = make_retriever("dense", index, embedder=emb)
    assert 0 < emb.texts <= len(chunk_procedure(changed))  # only the changed doc's passages
    assert all(pid.rsplit("#", 1)[0] != gone for pid in r.dense.ids)
    assert r.rank("zebra-stripe valve note")[0][0] == doc
    assert gone not in [h.doc_id for h in make_retriever("bm25", index).search("anything at all", 50).hits]


def test_graph_seeds_by_entity_specificity_and_survives_reload(index):
    emb = HashingEmbedder(64)
    g = make_retriever("graph", index, baseline_cfg=BaselineConfig(passage_seed_weight=0.0), embedder=emb)
    seeds = g.seeds("GEN-1 did not start and UPS is on battery")
    assert seeds and all(w > 0 for w in seeds.values())
    rare = min(g.idf, key=lambda k: -g.idf[k])  # the most specific entity
    assert g.seeds(rare)[rare] == pytest.approx(g.idf[rare])
    ranked = g.rank("GEN-1 did not start and UPS is on battery")
    assert ranked[0][0].startswith("datacenter/ups-on-battery")
    again = make_retriever("graph", index, baseline_cfg=BaselineConfig(passage_seed_weight=0.0), embedder=emb)
    reloaded = again.rank("GEN-1 did not start and UPS is on battery")
    assert [d for d, _ in reloaded] == [d for d, _ in ranked]
    assert [s for _, s in reloaded] == pytest.approx([s for _, s in ranked])
    assert g.rank("zzzz qqqq") == []  # no entity linked, no passage seeds: nothing returned


# ----------------------------------------------------------------------------- the index's own embedder
@dataclasses.dataclass
class EmbeddingIndex(FakeIndex):
    embed_fn: object = None  # what SopIndex carries: the embedder the index was built with


@pytest.fixture()
def no_minilm(monkeypatch):
    """Any use of MiniLM fails the test: an index built with another embedder must never fall back to it."""
    import sopr_rag.retrieval.embedder as embedder_mod

    def refuse():
        raise AssertionError("MiniLM was loaded for an index built with another embedder")

    monkeypatch.setattr(embedder_mod, "get_model", refuse)


@pytest.mark.parametrize("method", ["dense", "hybrid", "graph"])
def test_baselines_default_to_the_index_embedder_and_rebuild_with_it(procs, tmp_path, no_minilm, method):
    emb = CountingEmbedder()
    index = EmbeddingIndex(dict(procs), tmp_path / "idx", emb)
    query = "generator failed to start while on battery"
    want = [d for d, _ in make_retriever(method, index, embedder=CountingEmbedder()).rank(query)]
    assert emb.texts == 0  # explicit embedder given (same kind): the index's one was not used
    # no embedder given (as the CLI and the evaluation open baselines): the index's own, nothing re-embedded
    assert [d for d, _ in make_retriever(method, index).rank(query)] == want
    assert emb.texts == 1 + (method == "graph")  # only the query (graph: entity linking + passage seeds)
    # a damaged dense index is rebuilt with the index's embedder, not MiniLM, and answers the same
    base = tmp_path / "idx" / "baselines"
    (base / "dense" / "faiss" / "index.faiss").write_bytes(b"\0" * 20)
    if method == "graph":
        (base / "graph" / "entities" / "index.faiss").write_bytes(b"\0" * 20)
    emb.texts = 0
    assert [d for d, _ in make_retriever(method, index).rank(query)] == want
    assert emb.texts > len(procs)  # every passage re-embedded by the hashing embedder
    assert [d for d, _ in make_retriever(method, index).rank(query)] == want  # and saved: reopens cleanly


def _same(a, b):
    return [d for d, _ in a] == [d for d, _ in b] and [s for _, s in a] == pytest.approx([s for _, s in b])


def test_dense_baseline_rebuilds_for_an_embedder_of_another_width(index, procs):
    query = "coolant leak at the rack manifold, drip tray"
    assert make_retriever("dense", index, embedder=HashingEmbedder(64)).dense.dim == 64
    narrow = make_retriever("dense", index, embedder=HashingEmbedder(32))  # same kind, other width: rebuilt
    fresh = make_retriever("dense", FakeIndex(dict(procs), index.index_dir.parent / "fresh"),
                          embedder=HashingEmbedder(32))
    assert narrow.dense.dim == 32 and _same(narrow.rank(query), fresh.rank(query))
    # the faiss files of one width under a manifest of the other (a half-finished rebuild): rebuilt, not crashed
    manifest = index.index_dir / "baselines" / "dense" / "manifest.json"
    saved = manifest.read_text()
    make_retriever("dense", index, embedder=HashingEmbedder(64))
    manifest.write_text(saved)  # claims 32-d, holds 64-d vectors
    again = make_retriever("dense", index, embedder=HashingEmbedder(32))
    assert again.dense.dim == 32 and _same(again.rank(query), fresh.rank(query))
