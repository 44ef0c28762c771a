"""A bounded schemathesis run over the HTTP API: no generated request may get a 5xx."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from sopr_rag.api import create_app

schemathesis = pytest.importorskip("schemathesis")


@pytest.fixture(scope="module")
def api_schema(minilm_index):
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(minilm_index.index_dir, index=minilm_index))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error(case):
    response = case.call()
    assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
