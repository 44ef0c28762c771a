"""SamplingParams.json_schema (structured output): how each backend passes it on. No model is loaded:
vLLM is replaced by a fake module, the HTTP endpoint by an httpx mock transport."""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
import types
from pathlib import Path

import httpx
import pytest

from runtime.llm import SamplingParams
from runtime.llm import vllm_backend as vb

SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}, "required": ["name"]}


def test_json_schema_is_kept_as_canonical_text():
    a = SamplingParams(json_schema=SCHEMA)
    b = SamplingParams(json_schema=json.dumps(SCHEMA, indent=2))
    assert a == b and hash(a) == hash(b) and a.schema() == SCHEMA
    assert SamplingParams().schema() is None
    assert SamplingParams(**{**a.__dict__, "seed": 3}).schema() == SCHEMA  # copies keep it (bench/llm_json.py)
    with pytest.raises(ValueError, match="JSON schema object"):
        SamplingParams(json_schema="[1, 2]")


@pytest.fixture()
def fake_vllm(monkeypatch):
    """A stand-in `vllm` package: SamplingParams / StructuredOutputsParams record their arguments, LLM echoes."""
    class Record:
        def __init__(self, **kw):
            self.kw = kw

    class FakeLLM:
        made: list[dict] = []

        def __init__(self, model, dtype, max_model_len, seed, structured_outputs_config=None, **kw):
            FakeLLM.made.append({"structured_outputs_config": structured_outputs_config, **kw})
            self.calls = []

        def generate(self, prompts, sampling, use_tqdm=False):
            self.calls.append(sampling)
            out = types.SimpleNamespace(text='{"name":"x"}', token_ids=[1, 2, 3], finish_reason="stop",
                                        stop_reason=None)
            return [types.SimpleNamespace(outputs=[out], prompt_token_ids=[7, 8]) for _ in prompts]

    vllm = types.ModuleType("vllm")
    vllm.SamplingParams = type("SamplingParams", (Record,), {})
    vllm.LLM = FakeLLM
    sp = types.ModuleType("vllm.sampling_params")
    sp.StructuredOutputsParams = type("StructuredOutputsParams", (Record,), {})
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sp)
    monkeypatch.setattr(vb, "configure_vllm_env", lambda in_process=True: None)
    monkeypatch.setattr(vb, "_has_cuda", lambda: False)
    import runtime.assets

    monkeypatch.setattr(runtime.assets, "model_dir", lambda name: Path("/models") / name)
    return vllm


def test_vllm_backend_sends_the_schema_as_structured_outputs(fake_vllm):
    backend = vb.VLLMBackend("tiny", dtype="float32")
    made = fake_vllm.LLM.made[-1]
    assert made["structured_outputs_config"] == {"backend": "xgrammar", "disable_any_whitespace": True}
    gen = backend.generate(["Name:"], SamplingParams(max_new_tokens=16, json_schema=SCHEMA))[0]
    assert gen.text == '{"name":"x"}' and gen.token_ids == [1, 2] and gen.prompt_tokens == 2
    sampling = backend.llm.calls[-1]
    assert sampling.kw["max_tokens"] == 16 and sampling.kw["structured_outputs"].kw == {"json": SCHEMA}
    backend.generate(["Name:"], SamplingParams(max_new_tokens=16))
    assert "structured_outputs" not in backend.llm.calls[-1].kw  # unconstrained unless asked


def test_installed_vllm_has_the_structured_output_api():
    """The names used above exist in the installed vLLM (read from its source; vLLM is not imported)."""
    spec = importlib.util.find_spec("vllm")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("vllm is not installed")
    root = Path(list(spec.submodule_search_locations)[0])

    def fields(path: Path, cls: str) -> set[str]:
        tree = ast.parse(path.read_text())
        node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
        return {n.target.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}

    assert "json" in fields(root / "sampling_params.py", "StructuredOutputsParams")
    assert "structured_outputs" in fields(root / "sampling_params.py", "SamplingParams")
    assert "disable_any_whitespace" in fields(root / "config" / "structured_outputs.py", "StructuredOutputsConfig")
    assert "structured_outputs_config" in (root / "entrypoints" / "llm.py").read_text()


def test_openai_backend_sends_the_schema_as_response_format():
    from runtime.llm.openai_http import OpenAIHTTPBackend

    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"choices": [{"message": {"content": '{"name":"x"}'}, "finish_reason": "stop"}],
                                         "usage": {"prompt_tokens": 3}})

    client = OpenAIHTTPBackend("m", base_url="http://test/v1", max_retries=0)
    client.client = httpx.Client(transport=httpx.MockTransport(handler))
    msgs = [{"role": "user", "content": "name?"}]
    assert client.generate([msgs], SamplingParams(json_schema=SCHEMA))[0].text == '{"name":"x"}'
    assert sent[-1]["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": SCHEMA}}
    client.generate([msgs], SamplingParams())
    assert "response_format" not in sent[-1]
