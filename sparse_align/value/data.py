"""Distillation data: sample responses from the base model, label each with the teacher reward.

Responses keep their EOS token (an ended response is a prefix too: V at EOS is the value steering sees
when EOS is a candidate). With `candidate_positions > 0` (or `candidate_bands`) each record also carries
candidate-level targets (value/candidates.py); data labelled under other candidate positions is topped up in
place (`top_up_candidates`: the sampled responses stay, only positions are added or dropped). Written as
JSONL, one record per response, flushed per batch; a rerun resumes after the last complete prompt (a crash
loses at most the batch being generated). With `prompts_per_batch > 1` several prompts (left-padded) share
one batched `generate`: on a CPU a decoding step is bound by reading the weights, so 16 rows cost ~1.3x one
row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from runtime.checkpoint import atomic_write_text
from runtime.logging import JsonlWriter, get_logger, progress, read_jsonl
from sparse_align.config import DistillConfig
from sparse_align.rewards.base import RewardModel
from sparse_align.steer.decode import eos_ids, render_prompt
from sparse_align.value.candidates import label_candidates, wanted_positions

log = get_logger("sparse_align.distill")


@torch.inference_mode()
def sample_responses(model: Any, tokenizer: Any, prompt_ids: list[int], n: int, max_new_tokens: int,
                     temperature: float, seed: int) -> list[list[int]]:
    """n temperature samples for one prompt (one batched `generate`), each cut after its first EOS."""
    torch.manual_seed(seed)
    ids = torch.tensor([prompt_ids] * n, device=next(model.parameters()).device)
    stop = sorted(eos_ids(model, tokenizer))
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=temperature,
                         top_p=1.0, top_k=0, max_new_tokens=max_new_tokens, eos_token_id=stop,
                         pad_token_id=stop[0])
    return [_cut(row, stop) for row in out[:, len(prompt_ids):].tolist()]


def _cut(row: list[int], stop: list[int]) -> list[int]:
    """The response up to and including its first EOS (generate pads finished rows after it)."""
    end = next((i for i, t in enumerate(row) if t in stop), None)
    return row if end is None else row[:end + 1]


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
    responses = [_cut(row, stop) for row in out[:, width:].tolist()]
    return [responses[i * n:(i + 1) * n] for i in range(len(prompts_ids))]


def generate_distill_data(model: Any, tokenizer: Any, prompts: list[str], teacher: RewardModel,
                          cfg: DistillConfig, path: str | Path, *, completion: bool = False) -> list[dict[str, Any]]:
    """`cfg.max_new_tokens` must be set (the pipeline fills None with the evaluation length)."""
    if cfg.max_new_tokens is None:
        raise ValueError("DistillConfig.max_new_tokens is None: resolve it to the evaluation length first")
    path = Path(path)
    old = read_jsonl(path) if path.exists() else []
    stale = [r["prompt_index"] for r in old if r["prompt_index"] >= len(prompts) or r["prompt"] != prompts[r["prompt_index"]]]
    if stale:
        raise ValueError(f"{path} was made from other prompts (e.g. index {stale[0]}); move it away to regenerate")
    if old and old[0]["prompt_ids"] != render_prompt(tokenizer, prompts[old[0]["prompt_index"]], completion=completion):
        # same text, other token ids: another tokenizer or template (e.g. a model folder converted without <bos>)
        raise ValueError(f"{path} was made with another tokenization of its prompts; move it away to regenerate")
    if old and (_labels_candidates(cfg) or any(r.get("cands") for r in old)):
        top_up_candidates(model, tokenizer, old, teacher, cfg, path)
    done = {r["prompt_index"] for r in old}
    if done:
        log.info("resuming distillation data: %d/%d prompts already in %s", len(done), len(prompts), path)
    todo = [i for i in range(len(prompts)) if i not in done]
    batches = [todo[b:b + cfg.prompts_per_batch] for b in range(0, len(todo), cfg.prompts_per_batch)]
    bar = progress(total=len(prompts), initial=len(done), desc="distill data")
    with JsonlWriter(path) as writer:
        for batch in batches:
            ids = [render_prompt(tokenizer, prompts[i], completion=completion) for i in batch]
            seed = cfg.seed * 100_003 + batch[0]
            if len(batch) == 1:  # the batch-1 path (bit-identical to earlier data)
                per_prompt = [sample_responses(model, tokenizer, ids[0], cfg.samples_per_prompt,
                                               cfg.max_new_tokens, cfg.temperature, seed)]
            else:
                per_prompt = sample_responses_multi(model, tokenizer, ids, cfg.samples_per_prompt,
                                                    cfg.max_new_tokens, cfg.temperature, seed)
            records = []
            for i, prompt_ids, responses in zip(batch, ids, per_prompt):
                texts = [tokenizer.decode(r, skip_special_tokens=True) for r in responses]
                rewards = teacher.score([prompts[i]] * len(texts), texts)
                records += [{"prompt_index": i, "sample": j, "prompt": prompts[i], "prompt_ids": prompt_ids,
                             "response_ids": r, "response": text, "reward": reward}
                            for j, (r, text, reward) in enumerate(zip(responses, texts, rewards))]
            records = [r for r in records if r["response_ids"]]
            if _labels_candidates(cfg):
                label_candidates(model, tokenizer, records, teacher, _positions(model, records, cfg), cfg.candidate_k)
            for rec in records:
                writer.write(rec)
            bar.update(len(batch))
        bar.close()
    return [r for r in read_jsonl(path) if r["response_ids"]]


def _positions(model: Any, rows: list[dict[str, Any]], cfg: DistillConfig) -> list[list[int]]:
    return wanted_positions(model, rows, cfg.candidate_k, cfg.candidate_positions, cfg.candidate_bands, cfg.seed)


def _labels_candidates(cfg: DistillConfig) -> bool:
    return cfg.candidate_positions > 0 or any(n for _, _, n in cfg.candidate_bands)


def top_up_candidates(model: Any, tokenizer: Any, rows: list[dict[str, Any]], teacher: RewardModel,
                      cfg: DistillConfig, path: Path, chunk_rows: int = 128) -> int:
    """Bring rows written under other candidate settings to this config's positions, in place; the file is
    rewritten atomically after every chunk (a crash keeps every chunk done). Returns positions labelled."""
    labelled = 0
    bar = progress(total=len(rows), desc="candidate top-up")
    for b in range(0, len(rows), chunk_rows):
        chunk = rows[b:b + chunk_rows]
        want = _positions(model, chunk, cfg)
        if any([c["t"] for c in r.get("cands", [])] != ts for r, ts in zip(chunk, want)):
            n = label_candidates(model, tokenizer, chunk, teacher, want, cfg.candidate_k)
            labelled += n
            atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
        bar.update(len(chunk))
    bar.close()
    if labelled:
        log.info("topped up %d candidate positions in %s", labelled, path)
    return labelled
