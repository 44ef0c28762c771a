"""SOPRAG test fixtures: the fixture SOP corpus and queries, and indexes built from them once per session."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SOP_CORPUS = FIXTURES / "sop_corpus"
SOP_QUERIES = FIXTURES / "sop_queries.jsonl"


@pytest.fixture(scope="session")
def sop_corpus() -> Path:
    return SOP_CORPUS


@pytest.fixture(scope="session")
def sop_queries() -> list[dict]:
    return [json.loads(line) for line in SOP_QUERIES.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def hashing_embedder():
    """No-model embedder: deterministic, lexical; for structural tests that need no semantics."""
    from sopr_rag.retrieval.embedder import HashingEmbedder

    return HashingEmbedder(dim=64)


@pytest.fixture(scope="session")
def minilm_index(tmp_path_factory):
    """The fixture corpus indexed with the real MiniLM (built once: ~20 s on 2 cores)."""
    from sopr_rag.index import SopIndex

    out = tmp_path_factory.mktemp("soprag") / "index"
    index, _ = SopIndex.build(SOP_CORPUS, out)
    return index


@pytest.fixture()
def corpus_copy(tmp_path) -> Path:
    dst = tmp_path / "corpus"
    shutil.copytree(SOP_CORPUS, dst)
    return dst
