"""Token-level value model V(prompt, y<t, c): a scalar head on a causal LM's final hidden state.

Default: the head reads the frozen base model's own final (normed) hidden state, so scoring
candidates reuses the base model's KV cache. With `lora_rank > 0` the backbone gets LoRA adapters
(peft) and becomes a separate model with its own cache.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from runtime.assets import load_model
from runtime.checkpoint import atomic_save_tensors, atomic_write_json
from sparse_align.config import ValueModelConfig

HEAD_FILE = "value_head.safetensors"
CONFIG_FILE = "value_config.json"
LORA_DIR = "lora"


class ValueHead(nn.Module):
    def __init__(self, hidden_size: int, head_hidden: int):
        super().__init__()
        if head_hidden > 0:
            self.net = nn.Sequential(nn.Linear(hidden_size, head_hidden), nn.GELU(), nn.Linear(head_hidden, 1))
        else:
            self.net = nn.Linear(hidden_size, 1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.net(hidden.to(next(self.parameters()).dtype)).squeeze(-1)


class ValueModel(nn.Module):
    def __init__(self, cfg: ValueModelConfig, backbone: nn.Module):
        super().__init__()
        self.cfg = cfg
        self.backbone = backbone
        self.head = ValueHead(backbone.config.hidden_size, cfg.head_hidden).to(next(backbone.parameters()).device)

    @property
    def shares_backbone(self) -> bool:
        """True when the backbone is the unmodified base model, so its KV cache can be reused."""
        return self.cfg.lora_rank == 0

    @property
    def head_device(self) -> torch.device:
        return next(self.head.parameters()).device

    @classmethod
    def build(cls, cfg: ValueModelConfig, backbone: nn.Module | None = None) -> ValueModel:
        if backbone is None:
            backbone = load_backbone(cfg.backbone)
        if cfg.lora_rank > 0:
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, target_modules=["q_proj", "v_proj"])
            backbone = get_peft_model(backbone, lora)
        else:
            for p in backbone.parameters():
                p.requires_grad_(False)
        return cls(cfg, backbone)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """V at every position ([B, T]): the value of the prefix ending at that token."""
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                            logits_to_keep=1)
        return self.head(out.hidden_states[-1])

    @torch.inference_mode()
    def final_values(self, seqs: list[list[int]], batch_rows: int = 16) -> list[float]:
        """V at the last token of each sequence (right-padded batches: causal, so padding is never seen)."""
        out: list[float] = [0.0] * len(seqs)
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        for b in range(0, len(order), batch_rows):
            chunk = order[b:b + batch_rows]
            width = max(len(seqs[i]) for i in chunk)
            ids = torch.tensor([seqs[i] + [seqs[i][-1]] * (width - len(seqs[i])) for i in chunk], device=self.head_device)
            values = self(ids)
            for k, i in enumerate(chunk):
                out[i] = float(values[k, len(seqs[i]) - 1])
        return out

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_save_tensors(folder / HEAD_FILE, self.head.state_dict())
        if self.cfg.lora_rank > 0:
            self.backbone.save_pretrained(str(folder / LORA_DIR))
        atomic_write_json(folder / CONFIG_FILE, self.cfg.model_dump())  # written last: marks completeness
        return folder

    @classmethod
    def load(cls, folder: str | Path, backbone: nn.Module | None = None) -> ValueModel:
        """Load a saved value model; `backbone` (the base model) is reused when no LoRA was trained."""
        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"no value model at {folder} (missing {CONFIG_FILE}); train one first")
        cfg = ValueModelConfig.model_validate(json.loads((folder / CONFIG_FILE).read_text()))
        if cfg.lora_rank > 0:
            from peft import PeftModel

            base = load_backbone(cfg.backbone)  # never the caller's model: adapters must not leak into it
            backbone = PeftModel.from_pretrained(base, str(folder / LORA_DIR)).eval()
            model = cls(cfg, backbone)
        else:
            model = cls(cfg, backbone if backbone is not None else load_backbone(cfg.backbone))
        model.head.load_state_dict(load_file(str(folder / HEAD_FILE)))
        return model.eval()


def load_backbone(name: str, **kw: Any) -> nn.Module:
    """An asset name (runtime.assets) or a local HF folder."""
    if Path(name).is_dir():
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(name, **kw).eval()
    return load_model(name, **kw).eval()
