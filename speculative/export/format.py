"""vLLM/SGLang EAGLE-3 checkpoint format: `config.json` + `model.safetensors`.

vLLM (`llama_eagle3.py`) and SGLang skip unknown keys silently and fall back to defaults for missing
ones; a missing `d2t` makes draft ids be read as target ids and acceptance collapses without an
error. So the key set and every shape are checked against the config before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from runtime.checkpoint import atomic_save_tensors, atomic_write_json
from speculative.model.draft import Eagle3Draft, Eagle3DraftConfig

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


class ExportError(ValueError):
    """An export whose keys, shapes or dtypes would not load correctly."""


def expected_shapes(cfg: Eagle3DraftConfig) -> dict[str, tuple[int, ...]]:
    h, q, kv, inter = (cfg.hidden_size, cfg.num_attention_heads * cfg.head_dim,
                       cfg.num_key_value_heads * cfg.head_dim, cfg.intermediate_size)
    m = "midlayer."
    return {
        "fc.weight": (h, 3 * cfg.target_hidden_size),
        m + "input_layernorm.weight": (h,), m + "hidden_norm.weight": (h,),
        m + "self_attn.q_proj.weight": (q, 2 * h), m + "self_attn.k_proj.weight": (kv, 2 * h),
        m + "self_attn.v_proj.weight": (kv, 2 * h), m + "self_attn.o_proj.weight": (h, q),
        m + "post_attention_layernorm.weight": (h,),
        m + "mlp.gate_proj.weight": (inter, h), m + "mlp.up_proj.weight": (inter, h),
        m + "mlp.down_proj.weight": (h, inter),
        "norm.weight": (h,), "lm_head.weight": (cfg.draft_vocab_size, h),
        "d2t": (cfg.draft_vocab_size,), "t2d": (cfg.vocab_size,),
    }


def validate_export(tensors: dict[str, torch.Tensor], cfg: Eagle3DraftConfig) -> None:
    """Raise ExportError unless `tensors` is exactly the expected key set with the expected shapes."""
    want = expected_shapes(cfg)
    problems = [f"missing key '{k}'" for k in sorted(set(want) - set(tensors))]
    problems += [f"unexpected key '{k}' (loaders would skip it silently)" for k in sorted(set(tensors) - set(want))]
    for k in sorted(set(want) & set(tensors)):
        if tuple(tensors[k].shape) != want[k]:
            problems.append(f"'{k}' has shape {tuple(tensors[k].shape)}, expected {want[k]}")
    if "d2t" in tensors and tensors["d2t"].dtype != torch.int64:
        problems.append(f"'d2t' must be int64 offsets, got {tensors['d2t'].dtype}")
    if "t2d" in tensors and tensors["t2d"].dtype != torch.bool:
        problems.append(f"'t2d' must be bool, got {tensors['t2d'].dtype}")
    if not problems and "d2t" in tensors:
        target_ids = torch.arange(cfg.draft_vocab_size) + tensors["d2t"]
        if int(target_ids.min()) < 0 or int(target_ids.max()) >= cfg.vocab_size:
            problems.append("d2t maps draft ids outside the target vocabulary")
        elif not torch.equal(torch.nonzero(tensors["t2d"])[:, 0], target_ids):
            problems.append("t2d does not mark exactly the target ids of d2t")
    if problems:
        raise ExportError("invalid EAGLE-3 export:\n  " + "\n  ".join(problems))


def draft_hf_config(cfg: Eagle3DraftConfig, torch_dtype: str = "float32") -> dict[str, Any]:
    """The config.json vLLM (`LlamaForCausalLMEagle3`) and SGLang read; aux ids in vLLM's convention."""
    rope = dict(cfg.rope_parameters)
    rope_scaling = {k: v for k, v in rope.items() if k != "rope_theta"}
    return {
        "architectures": ["LlamaForCausalLMEagle3"],
        "model_type": "llama",
        "num_hidden_layers": 1,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_key_value_heads,
        "head_dim": cfg.head_dim,
        "hidden_act": cfg.hidden_act,
        "rms_norm_eps": cfg.rms_norm_eps,
        "max_position_embeddings": cfg.max_position_embeddings,
        "rope_theta": rope.get("rope_theta", 10000.0),  # SGLang / transformers<5 read these two
        "rope_scaling": rope_scaling if rope_scaling.get("rope_type", "default") != "default" else None,
        "rope_parameters": rope,  # transformers>=5 (what vLLM 0.32 reads)
        "vocab_size": cfg.vocab_size,
        "draft_vocab_size": cfg.draft_vocab_size,
        "target_hidden_size": cfg.target_hidden_size,
        "tie_word_embeddings": False,
        "attention_bias": False,
        "mlp_bias": False,
        "torch_dtype": torch_dtype,
        "eagle_config": {"eagle_aux_hidden_state_layer_ids": list(cfg.aux_layer_ids), "use_aux_hidden_state": True},
        "llmsys_draft_config": cfg.model_dump(mode="json"),  # exact round trip for load_exported_draft
    }


def export_draft(draft: Eagle3Draft, out_dir: str | Path, *, dtype: torch.dtype | None = None) -> Path:
    """Validate, then write `config.json` and `model.safetensors` atomically into `out_dir`."""
    cfg = draft.config
    tensors = {k: v.detach().cpu() for k, v in draft.export_state_dict().items()}
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    validate_export(tensors, cfg)
    out = Path(out_dir)
    float_dtype = next(v.dtype for v in tensors.values() if v.is_floating_point())
    atomic_save_tensors(out / WEIGHTS, tensors, metadata={"format": "pt"})
    atomic_write_json(out / CONFIG, draft_hf_config(cfg, str(float_dtype).replace("torch.", "")))
    return out


def load_exported_draft(path: str | Path, *, embed_weight: torch.Tensor | None = None,
                        device: Any = "cpu") -> Eagle3Draft:
    """Rebuild an `Eagle3Draft` from an export; pass the target's embedding (it is not exported)."""
    path = Path(path)
    if not (path / CONFIG).is_file() or not (path / WEIGHTS).is_file():
        raise ExportError(f"{path} is not an EAGLE-3 export (needs {CONFIG} and {WEIGHTS})")
    raw = json.loads((path / CONFIG).read_text())
    cfg = Eagle3DraftConfig(**raw["llmsys_draft_config"]) if "llmsys_draft_config" in raw else _config_from_hf(raw)
    tensors = load_file(str(path / WEIGHTS))
    validate_export(tensors, cfg)
    draft = Eagle3Draft(cfg, embed_weight=embed_weight)
    missing, unexpected = draft.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if not k.startswith(("embed_tokens.", "rotary.")) and k != "aux_scale"]
    if missing or unexpected:
        raise ExportError(f"export/model mismatch: missing {missing}, unexpected {unexpected}")
    return draft.to(device).eval()


def _config_from_hf(raw: dict[str, Any]) -> Eagle3DraftConfig:
    """Exports written by other tools (SpecForge): derive from the HF fields."""
    rope = raw.get("rope_parameters") or {"rope_type": "default", "rope_theta": raw.get("rope_theta", 10000.0),
                                          **(raw.get("rope_scaling") or {})}
    ids = raw.get("eagle_config", {}).get("eagle_aux_hidden_state_layer_ids")
    if ids is None:
        raise ExportError("config.json has no eagle_config.eagle_aux_hidden_state_layer_ids; cannot tell the "
                          "target depth")
    return Eagle3DraftConfig(
        hidden_size=raw["hidden_size"], num_attention_heads=raw["num_attention_heads"],
        num_key_value_heads=raw.get("num_key_value_heads", raw["num_attention_heads"]),
        head_dim=raw.get("head_dim") or raw["hidden_size"] // raw["num_attention_heads"],
        intermediate_size=raw["intermediate_size"], rms_norm_eps=raw["rms_norm_eps"],
        hidden_act=raw.get("hidden_act", "silu"), rope_parameters=rope,
        max_position_embeddings=raw["max_position_embeddings"], vocab_size=raw["vocab_size"],
        draft_vocab_size=raw.get("draft_vocab_size", raw["vocab_size"]),
        target_hidden_size=raw.get("target_hidden_size", raw["hidden_size"]),
        target_num_layers=ids[-1] + 3, aux_layer_ids=ids)  # default convention: last id = L-3
