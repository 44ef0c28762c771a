"""HTTP API round trip (FastAPI TestClient): search, ask, OpenAPI, bounded inputs, no paths from clients."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from sopr_rag.api import MAX_QUERY_CHARS, create_app


@pytest.fixture(scope="module")
def client(minilm_index):
    return TestClient(create_app(minilm_index.index_dir, index=minilm_index))


def test_search_and_ask_round_trip(client):
    r = client.post("/search", json={"query": "frost on the wings, clear night, which fluid?", "top_k": 3})
    assert r.status_code == 200
    body = r.json()
    assert body["ranked_docs"][0] == "airline_ground_ops/deicing-standard-frost-removal.md"
    assert len(body["scores"]) == 3 and set(body["expert_weights"]) == {"entity", "causal", "flow"}
    r = client.post("/ask", json={"question": "UPS on battery and the generator will not start"})
    assert r.status_code == 200
    ask = r.json()
    assert ask["procedures"][0]["doc_id"] == "datacenter/ups-on-battery-generator-failed.md"
    assert ask["steps"] and ask["answer"] is None
    assert client.get("/health").json() == {"status": "ok", "documents": 13}
    spec = client.get("/openapi.json").json()
    assert {"/search", "/ask", "/health"} <= set(spec["paths"])


@pytest.mark.parametrize("payload", [
    {"query": "x" * (MAX_QUERY_CHARS + 1)},
    {"query": ""},
    {"query": "ok", "top_k": 0},
    {"query": "ok", "top_k": 1000},
    {"query": "ok", "index": "/etc"},  # no filesystem paths from clients: unknown fields are refused
    {"query": "ok", "method": "../../x"},
])
def test_bad_requests_are_refused(client, payload):
    assert client.post("/search", json=payload).status_code == 422
