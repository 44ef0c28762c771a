"""HTTP API over one SOPRAG index: POST /search, POST /ask, GET /health (OpenAPI at /docs, /openapi.json).

The index folder is fixed when the server starts; clients send only text and small integers, never
paths. Request sizes are bounded by the pydantic models below (FastAPI answers 422 beyond them).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from sopr_rag.config import SopragConfig

MAX_QUERY_CHARS = 2000


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(..., min_length=1, max_length=MAX_QUERY_CHARS)
    top_k: int = Field(10, ge=1, le=100)
    method: Literal["soprag", "bm25", "bm25-chunk", "dense", "hybrid", "graph"] = "soprag"


class SearchResponse(BaseModel):
    query: str
    ranked_docs: list[str]
    scores: list[float]
    expert_weights: dict[str, float]
    steps: list[dict[str, Any]]
    timings_ms: dict[str, float]


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(..., min_length=1, max_length=MAX_QUERY_CHARS)
    top_k: int = Field(3, ge=1, le=20)
    generate: bool = False


class AskResponse(BaseModel):
    question: str
    procedures: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    expert_weights: dict[str, float]
    answer: str | None


def create_app(index_dir: str | Path, cfg: SopragConfig | None = None, index: Any = None) -> FastAPI:
    from sopr_rag.cli import make_retriever
    from sopr_rag.index import SopIndex

    cfg = cfg or SopragConfig()
    index = index if index is not None else SopIndex.load(index_dir)
    retrievers: dict[str, Any] = {}
    lock = threading.Lock()  # retrievers share one embedder/graph state; serialise queries

    def retriever(method: str) -> Any:
        if method not in retrievers:
            try:
                retrievers[method] = make_retriever(method, index, cfg)
            except (ImportError, ValueError) as err:
                raise HTTPException(400, f"method '{method}' unavailable: {err}") from None
        return retrievers[method]

    app = FastAPI(title="SOPRAG", version="1.0",
                  description="Retrieval over standard operating procedures with Procedure Cards and graph experts.")

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "documents": len(index.docs)}

    @app.post("/search", response_model=SearchResponse)
    def search(req: SearchRequest) -> SearchResponse:
        with lock:
            result = retriever(req.method).search(req.query, req.top_k)
        rec = result.to_record(None)
        return SearchResponse(query=req.query, ranked_docs=rec["ranked_docs"], scores=rec["scores"],
                              expert_weights=rec["expert_weights"], steps=rec["steps"], timings_ms=result.timings_ms)

    @app.post("/ask", response_model=AskResponse)
    def ask(req: AskRequest) -> AskResponse:
        with lock:
            return AskResponse(**retriever("soprag").answer(req.question, req.top_k, req.generate))

    return app
