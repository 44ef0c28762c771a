"""Export format: exact key/shape validation, config fields, lossless round trip."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from speculative.export import ExportError, export_draft, load_exported_draft, validate_export
from tests.speculative.conftest import tiny_draft_with_vocab


@pytest.fixture
def draft():
    return tiny_draft_with_vocab()


def test_export_round_trip_and_config(draft, tmp_path):
    out = export_draft(draft, tmp_path / "exp")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLMEagle3"] and cfg["model_type"] == "llama"
    assert cfg["num_hidden_layers"] == 1 and cfg["vocab_size"] == 80 and cfg["draft_vocab_size"] == 40
    assert cfg["target_hidden_size"] == 24
    assert cfg["eagle_config"] == {"eagle_aux_hidden_state_layer_ids": [2, 4, 5], "use_aux_hidden_state": True}
    assert cfg["rope_theta"] == 10000.0 and cfg["max_position_embeddings"] == 256
    keys = set(load_file(str(out / "model.safetensors")))
    assert "d2t" in keys and "t2d" in keys and "fc.weight" in keys and "lm_head.weight" in keys
    assert not any(k.startswith("embed_tokens") for k in keys)
    emb = draft.embed_tokens.weight.detach().clone()
    back = load_exported_draft(out, embed_weight=emb)
    ids = torch.randint(0, 80, (1, 6))
    h = torch.randn(1, 6, 32)
    pos = torch.arange(6)[None]
    with torch.no_grad():
        torch.testing.assert_close(back.logits(back(ids, h, pos)), draft.logits(draft(ids, h, pos)))
    assert torch.equal(back.d2t, draft.d2t) and torch.equal(back.t2d, draft.t2d)


def test_validation_rejects_bad_key_sets(draft):
    good = {k: v for k, v in draft.export_state_dict().items()}
    validate_export(good, draft.config)
    cases = {
        "missing key 'd2t'": {k: v for k, v in good.items() if k != "d2t"},
        "unexpected key 'extra.weight'": {**good, "extra.weight": torch.zeros(1)},
        "'fc.weight' has shape": {**good, "fc.weight": torch.zeros(32, 32)},
        "'d2t' must be int64": {**good, "d2t": good["d2t"].int()},
        "t2d does not mark": {**good, "t2d": torch.roll(good["t2d"], 1)},
    }
    for msg, tensors in cases.items():
        with pytest.raises(ExportError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            validate_export(tensors, draft.config)


def test_export_refuses_before_writing(draft, tmp_path):
    draft.lm_head = torch.nn.Linear(32, 39, bias=False)  # a draft vocab that disagrees with d2t
    with pytest.raises(ExportError):
        export_draft(draft, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_aux_scale_is_folded_into_fc(draft, tmp_path):
    """A fixed fc-input scale trains in the draft but exports as the plain format: the reloaded draft
    (scale 1) projects the target states exactly as the scaled one did."""
    draft.set_aux_scale(torch.rand(3 * 24) * 3 + 0.1)
    aux = torch.randn(2, 5, 3 * 24) * 20
    out = export_draft(draft, tmp_path / "exp")
    assert "aux_scale" not in load_file(str(out / "model.safetensors"))
    back = load_exported_draft(out, embed_weight=draft.embed_tokens.weight.detach().clone())
    assert torch.equal(back.aux_scale, torch.ones(3 * 24))
    with torch.no_grad():
        torch.testing.assert_close(back.project_aux(aux), draft.project_aux(aux), rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="aux_scale"):
        draft.set_aux_scale(torch.zeros(3 * 24))


def test_qwen_coder_recipe_ships_within_25_mb():
    """The code bundle's recipe (bundle_train_qwen_coder.yaml) on Qwen2.5-Coder-0.5B's architecture exports at most
    25 MB in bf16 (d2t int64, t2d bool), and the target's own MLP width would not (the reason it is narrowed)."""
    import math

    from runtime.config import load_config
    from runtime.paths import repo_root
    from speculative.export.format import expected_shapes
    from speculative.model.draft import Eagle3DraftConfig
    from speculative.parallel.config import DistTrainConfig

    qwen = {"hidden_size": 896, "num_attention_heads": 14, "num_key_value_heads": 2, "intermediate_size": 4864,
            "rms_norm_eps": 1e-6, "rope_theta": 1e6, "max_position_embeddings": 32768, "vocab_size": 151936,
            "num_hidden_layers": 24}  # Qwen2.5-Coder-0.5B-Instruct's config.json
    recipe = load_config(DistTrainConfig, repo_root() / "experiments/configs/speculative/bundle_train_qwen_coder.yaml")

    def export_bytes(inter: int | None) -> int:
        cfg = Eagle3DraftConfig.from_target(qwen, recipe.data.draft_vocab_size, intermediate_size=inter)
        size = {"d2t": 8, "t2d": 1}
        return sum(math.prod(s) * size.get(k, 2) for k, s in expected_shapes(cfg).items())

    assert recipe.target.model == "qwen2.5-coder-0.5b-instruct" and recipe.draft_intermediate_size == 1024
    assert 20e6 < export_bytes(recipe.draft_intermediate_size) <= 25e6
    assert export_bytes(None) > 25e6
