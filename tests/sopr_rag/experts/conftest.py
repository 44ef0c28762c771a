from __future__ import annotations

import pytest

from sopr_rag.index.artifacts import build_artifacts
from sopr_rag.ingest import IngestReport, list_documents, load_procedure


@pytest.fixture(scope="module")
def hashed_docs(sop_corpus, hashing_embedder):
    """doc id -> DocArtifacts for the fixture corpus, embedded with the no-model hashing embedder."""
    report = IngestReport()
    return {d: build_artifacts(load_procedure(d, f, report), hashing_embedder)
            for d, f in list_documents(sop_corpus).items()}
