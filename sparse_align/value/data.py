"""Distillation data: sample responses from the base model, label each with the teacher reward.

Written as JSONL, one record per response, flushed per batch; a rerun resumes after the last
complete prompt (a crash loses at most the batch being generated). With `prompts_per_batch > 1`
several prompts (left-padded) share one batched `generate`: on a CPU a decoding step is bound by
reading the weights, so 16 rows cost ~1.3x one row.
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


@torch.inference_mode()
def sample_responses_multi(model: Any, tokenizer: Any, prompts_ids: list[list[int]], n: int, max_new_tokens: int,
                           temperature: float, seed: int) -> list[list[list[int]]]:
    """n temperature samples for each of several prompts in ONE left-padded batched `generate`."""
    torch.manual_seed(seed)
    stop = sorted(eos_ids(model, tokenizer))
    width = max(len(p) for p in prompts_ids)
    rows = [p for p in prompts_ids for _ in range(n)]
    ids = torch.tensor([[stop[0]] * (width - len(p)) + p for p in rows], device=next(model.parameters()).device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in rows], device=ids.device)
    out = model.generate(ids, attention_mask=mask, do_sample=True, temperature=temperature, top_p=1.0, top_k=0,
                         max_new_tokens=max_new_tokens, eos_token_id=stop, pad_token_id=stop[0])
    responses = []
    for row in out[:, width:].tolist():
        cut = next((i for i, t in enumerate(row) if t in stop), len(row))
        responses.append(row[:cut])
    return [responses[i * n:(i + 1) * n] for i in range(len(prompts_ids))]


def generate_distill_data(model: Any, tokenizer: Any, prompts: list[str], teacher: RewardModel,
                          cfg: DistillConfig, path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    old = read_jsonl(path) if path.exists() else []
    stale = [r["prompt_index"] for r in old if r["prompt_index"] >= len(prompts) or r["prompt"] != prompts[r["prompt_index"]]]
    if stale:
        raise ValueError(f"{path} was made from other prompts (e.g. index {stale[0]}); move it away to regenerate")
    done = {r["prompt_index"] for r in old}
    if done:
        log.info("resuming distillation data: %d/%d prompts already in %s", len(done), len(prompts), path)
    todo = [i for i in range(len(prompts)) if i not in done]
    batches = [todo[b:b + cfg.prompts_per_batch] for b in range(0, len(todo), cfg.prompts_per_batch)]
    bar = progress(total=len(prompts), initial=len(done), desc="distill data")
    with JsonlWriter(path) as writer:
        for batch in batches:
            ids = [render_prompt(tokenizer, prompts[i]) for i in batch]
            seed = cfg.seed * 100_003 + batch[0]
            if len(batch) == 1:  # the batch-1 path (bit-identical to earlier data)
                per_prompt = [sample_responses(model, tokenizer, ids[0], cfg.samples_per_prompt,
                                               cfg.max_new_tokens, cfg.temperature, seed)]
            else:
                per_prompt = sample_responses_multi(model, tokenizer, ids, cfg.samples_per_prompt,
                                                    cfg.max_new_tokens, cfg.temperature, seed)
            for i, prompt_ids, responses in zip(batch, ids, per_prompt):
                texts = [tokenizer.decode(r, skip_special_tokens=True) for r in responses]
                rewards = teacher.score([prompts[i]] * len(texts), texts)
                for r, text, reward in zip(responses, texts, rewards):
                    writer.write({"prompt_index": i, "prompt": prompts[i], "prompt_ids": prompt_ids,
                                  "response_ids": r, "response": text, "reward": reward})
            bar.update(len(batch))
        bar.close()
    rows = read_jsonl(path)
    return [r for r in rows if r["response_ids"]]  # an immediate EOS has no prefix to regress on
