"""The post-trained stand-in for "20% steering matches a post-trained model": the base model fine-tuned
(LoRA, then merged) on its own teacher-best response per training prompt from the distillation samples
(best-of-N self-distillation, a cheap stand-in for RLHF on CPU). Loss on the response tokens only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from runtime.checkpoint import atomic_write_json
from runtime.device import seed_everything
from runtime.logging import get_logger, progress
from sparse_align.config import PosttrainConfig

log = get_logger("sparse_align.posttrain")
DONE = "posttrain_done.json"


def best_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The highest-reward response of each prompt (first one on ties)."""
    best: dict[int, dict[str, Any]] = {}
    for r in rows:
        if r["prompt_index"] not in best or r["reward"] > best[r["prompt_index"]]["reward"]:
            best[r["prompt_index"]] = r
    return [best[k] for k in sorted(best)]


def posttrain(base: torch.nn.Module, tokenizer: Any, rows: list[dict[str, Any]], cfg: PosttrainConfig,
              out: str | Path) -> Path:
    """Fine-tune `base` (a private copy: it is modified) and save the merged model to `out`."""
    from peft import LoraConfig, get_peft_model

    out = Path(out)
    seed_everything(cfg.seed)
    data = best_rows(rows)
    lora = LoraConfig(r=cfg.lora_rank, lora_alpha=2 * cfg.lora_rank,
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    model = get_peft_model(base, lora)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    dev = next(model.parameters()).device
    losses = []
    model.train()
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(cfg.seed + epoch)).tolist()
        for i in progress(order, desc=f"posttrain epoch {epoch + 1}"):
            r = data[i]
            ids = torch.tensor([r["prompt_ids"] + r["response_ids"]], device=dev)
            labels = ids.clone()
            labels[0, :len(r["prompt_ids"])] = -100  # learn the response, not the prompt
            loss = model(input_ids=ids, labels=labels).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    merged = model.merge_and_unload().eval()
    merged.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    summary = {"prompts": len(data), "mean_best_reward": sum(r["reward"] for r in data) / max(len(data), 1),
               "final_loss": sum(losses[-20:]) / max(len(losses[-20:]), 1), "steps": len(losses)}
    atomic_write_json(out / DONE, summary)  # written last: marks a complete folder
    log.info("post-trained stand-in saved to %s: %s", out, summary)
    return out
