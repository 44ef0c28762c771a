"""A bounded schemathesis run over the HTTP API: no generated request may get a 5xx.

Operations are driven through their hypothesis strategies directly (schemathesis' lazy pytest fixture
loader does not run under pytest 9). Answer generation is stubbed: this checks the HTTP boundary."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from sopr_rag.api import create_app
from sopr_rag.pipeline import SopragRetriever

schemathesis = pytest.importorskip("schemathesis")
MAX_EXAMPLES = 40


@pytest.fixture(scope="module")
def api_schema(minilm_index):
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(minilm_index.index_dir, index=minilm_index))


@pytest.mark.parametrize("path", ["/search", "/ask", "/health"])
def test_no_server_error(api_schema, path, monkeypatch):
    monkeypatch.setattr(SopragRetriever, "grounded_answer", lambda self, question, steps: "stub answer")
    operations = [r.ok() for r in api_schema.get_all_operations() if r.ok().path == path]
    assert operations

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case):
            response = case.call(timeout=600)  # the first call of a baseline method builds it
            assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"

        check()
