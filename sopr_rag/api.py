"""HTTP API over one SOPRAG index: POST /search, POST /ask, GET /health (OpenAPI at /docs, /openapi.json).

The index folder is fixed when the server starts; clients send only text and small integers, never
paths. Every request body is bounded (413 beyond `serve.max_body_bytes`, nothing read past it or
echoed back), must be strict JSON (no NaN/Infinity, no lone surrogates, UTF-8) and is validated
without coercion ("5" is not an int, 0 is not a bool); a 422 names the field, never repeats the input.
`/ask` with `generate: true` retrieves under the query lock, then generates on a separate single
worker with a bounded queue (503 when full) and a timeout (504), so it never holds up `/search`.
"""

from __future__ import annotations

import json
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sopr_rag.cli import exits_2_on_error, parse_verb_args, settings, verb_parser
from sopr_rag.config import ServeConfig, SopragConfig
from sopr_rag.index import SopIndex
from sopr_rag.retrievers import METHODS, make_retriever

MAX_QUERY_CHARS = 2000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _not_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("must contain a non-space character")
    return v


class SearchRequest(_Strict):
    query: str = Field(..., min_length=1, max_length=MAX_QUERY_CHARS)
    top_k: int = Field(10, ge=1, le=100)
    method: Literal[METHODS] = "soprag"  # the registry's names (sopr_rag/retrievers.py)

    _query_not_blank = field_validator("query")(_not_blank)


class SearchResponse(BaseModel):
    query: str
    ranked_docs: list[str]
    scores: list[float]
    expert_weights: dict[str, float]
    steps: list[dict[str, Any]]
    timings_ms: dict[str, float]


class AskRequest(_Strict):
    question: str = Field(..., min_length=1, max_length=MAX_QUERY_CHARS)
    top_k: int = Field(3, ge=1, le=20)
    generate: bool = False

    _question_not_blank = field_validator("question")(_not_blank)


class AskResponse(BaseModel):
    question: str
    procedures: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    expert_weights: dict[str, float]
    answer: str | None


# ----------------------------------------------------------------------------- request bodies
class BodyError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def _reject_constant(name: str) -> Any:
    raise BodyError(422, f"{name} is not valid JSON: numbers must be finite")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses to inf without passing through parse_constant
        raise BodyError(422, f"number {text[:40]} is out of range: numbers must be finite")
    return value


def _check_strings(obj: Any, path: str = "body") -> None:
    """Lone surrogates decode from JSON escapes but cannot be encoded again (tokenizers, responses)."""
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            raise BodyError(422, f"{path}: contains a lone surrogate (invalid Unicode)") from None
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check_strings(k, path)
            _check_strings(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _check_strings(v, f"{path}[{i}]")


def check_json_body(body: bytes) -> None:
    """Raise BodyError unless `body` is strict JSON (empty bodies are left to the validator)."""
    if not body.strip():
        return
    try:
        obj = json.loads(body.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float)
    except BodyError:
        raise
    except UnicodeDecodeError as err:
        raise BodyError(422, f"body is not UTF-8 ({err.reason} at byte {err.start})") from None
    except (ValueError, RecursionError) as err:
        raise BodyError(422, f"body is not valid JSON ({str(err)[:120]})") from None
    _check_strings(obj)


class StrictBodyMiddleware:
    """Pure ASGI middleware: bound the body size (413) and reject non-strict JSON (422) before routing."""

    def __init__(self, app: Any, max_body_bytes: int):
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        try:
            body = await self._read(scope, receive)
            check_json_body(body)
        except BodyError as err:
            return await JSONResponse({"detail": err.detail}, status_code=err.status)(scope, receive, send)
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, scope: dict, receive: Any) -> bytes:
        limit = self.max_body_bytes
        too_big = BodyError(413, f"request body larger than {limit} bytes")
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                raise BodyError(400, "invalid Content-Length header")
            if int(declared) > limit:
                raise too_big  # refused before reading a byte of it
        chunks, size, more = [], 0, True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                break
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:  # chunked uploads have no Content-Length: count as they arrive
                raise too_big
            chunks.append(chunk)
            more = msg.get("more_body", False)
        return b"".join(chunks)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each field and the rule it broke; the submitted values are never echoed."""
    errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))[:300],
               "type": e.get("type", "")} for e in exc.errors()[:20]]
    return JSONResponse({"detail": errors}, status_code=422)


# ----------------------------------------------------------------------------- generation
class GenerationWorker:
    """One background worker for LLM answers: at most `queue` waiting or running, each awaited `timeout_s`."""

    def __init__(self, queue: int, timeout_s: float):
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soprag-generate")
        self.slots = threading.BoundedSemaphore(queue)
        self.timeout_s = timeout_s

    def run(self, fn: Any, *args: Any) -> Any:
        if not self.slots.acquire(blocking=False):
            raise HTTPException(503, "answer generation is busy (queue full); retry later or ask without generate",
                                headers={"Retry-After": "5"})
        future = self.pool.submit(fn, *args)
        future.add_done_callback(lambda _: self.slots.release())  # a timed-out job keeps its slot until done
        try:
            return future.result(timeout=self.timeout_s)
        except FutureTimeout:
            raise HTTPException(504, f"answer generation did not finish within {self.timeout_s:g} s") from None


# ----------------------------------------------------------------------------- app
def create_app(index_dir: str | Path, cfg: SopragConfig | None = None, index: Any = None) -> FastAPI:
    cfg = cfg or SopragConfig()
    serve: ServeConfig = cfg.serve
    index = index if index is not None else SopIndex.load(index_dir)
    retrievers: dict[str, Any] = {}
    lock = threading.Lock()  # retrievers share one embedder/graph state; serialise queries
    generator = GenerationWorker(serve.generate_queue, serve.generate_timeout_s)

    def retriever(method: str) -> Any:
        if method not in retrievers:
            try:
                retrievers[method] = make_retriever(method, index, cfg)
            except (ImportError, ValueError) as err:
                raise HTTPException(400, f"method '{method}' unavailable: {err}") from None
        return retrievers[method]

    app = FastAPI(title="SOPRAG", version="1.0",
                  description="Retrieval over standard operating procedures with Procedure Cards and graph experts.")
    app.add_middleware(StrictBodyMiddleware, max_body_bytes=serve.max_body_bytes)
    app.add_exception_handler(RequestValidationError, _validation_error)

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
            soprag = retriever("soprag")
            out = soprag.answer(req.question, req.top_k, False)
        if req.generate and out["steps"]:  # outside the query lock: /search keeps serving meanwhile
            out["answer"] = generator.run(soprag.grounded_answer, req.question, out["steps"])
        return AskResponse(**out)

    return app


@exits_2_on_error
def serve(argv: list[str]) -> int:
    """Verb `python -m sopr_rag serve --index INDEX_DIR [--host H] [--port P] [--config FILE] [key=value ...]`."""
    ap = verb_parser("serve", "HTTP API over one index: POST /search, POST /ask, GET /health (OpenAPI at /docs);\n"
                              "the serve.* keys bound request bodies and answer generation.")
    ap.add_argument("--index", required=True, help="index folder (fixed for the server's lifetime)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    args = parse_verb_args(ap, argv)
    import uvicorn  # only the server process needs it

    uvicorn.run(create_app(args.index, settings(args)), host=args.host, port=args.port)
    return 0
