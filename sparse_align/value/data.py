"""Distillation data: sample responses from the base model, label each with the teacher reward.

Written as JSONL, one record per response, flushed per batch; a rerun resumes after the last
complete prompt (a crash loses at most the batch being generated).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from runtime.logging import JsonlWriter, get_logger, progress, read_jsonl
from sparse_align.config import DistillConfig
from sparse_align.rewards.base import RewardModel
from sparse_align.steer.decode import eos_ids, render_prompt

log = get_logger("sparse_align.distill")


@torch.inference_mode()
def sample_responses(model: Any, tokenizer: Any, prompt_ids: list[int], n: int, max_new_tokens: int,
                     temperature: float, seed: int) -> list[list[int]]:
    """n temperature samples for one prompt (one batched `generate`), EOS stripped."""
    torch.manual_seed(seed)
    ids = torch.tensor([prompt_ids] * n, device=next(model.parameters()).device)
    stop = sorted(eos_ids(model, tokenizer))
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=temperature,
                         top_p=1.0, top_k=0, max_new_tokens=max_new_tokens, eos_token_id=stop,
                         pad_token_id=stop[0])
    responses = []
    for row in out[:, len(prompt_ids):].tolist():
        cut = next((i for i, t in enumerate(row) if t in stop), len(row))
        responses.append(row[:cut])
    return responses


def generate_distill_data(model: Any, tokenizer: Any, prompts: list[str], teacher: RewardModel,
                          cfg: DistillConfig, path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    done = {r["prompt_index"] for r in read_jsonl(path)} if path.exists() else set()
    if done:
        log.info("resuming distillation data: %d/%d prompts already in %s", len(done), len(prompts), path)
    with JsonlWriter(path) as writer:
        for i, prompt in enumerate(progress(prompts, desc="distill data")):
            if i in done:
                continue
            prompt_ids = render_prompt(tokenizer, prompt)
            responses = sample_responses(model, tokenizer, prompt_ids, cfg.samples_per_prompt,
                                         cfg.max_new_tokens, cfg.temperature, cfg.seed * 100_003 + i)
            texts = [tokenizer.decode(r, skip_special_tokens=True) for r in responses]
            rewards = teacher.score([prompt] * len(texts), texts)
            for r, text, reward in zip(responses, texts, rewards):
                writer.write({"prompt_index": i, "prompt": prompt, "prompt_ids": prompt_ids, "response_ids": r,
                              "response": text, "reward": reward})
    rows = read_jsonl(path)
    return [r for r in rows if r["response_ids"]]  # an immediate EOS has no prefix to regress on
