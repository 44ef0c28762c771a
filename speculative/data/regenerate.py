"""Self-distillation data: regenerate assistant turns with the target itself, so the draft learns the
distribution it will have to predict at decode time (EAGLE practice; ShareGPT's own replies agree with
SmolLM2's argmax only ~62% of the time). Any runtime.llm backend works; vLLM batches best on CPU.

Each output row is keyed by a content hash of (model, sampling settings, prompt messages): a restarted
run skips rows already written, and a changed prompt or setting is regenerated instead of silently
reused. Rows are appended and flushed per chunk, so an interrupted run loses at most one chunk.

    python -m speculative regenerate out=regen.jsonl limit=2000 backend=vllm max_new_tokens=256
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from runtime.config import StrictModel, config_from_cli
from runtime.llm import LLMBackend, SamplingParams, make_backend
from runtime.logging import JsonlWriter, get_logger, progress, read_jsonl
from speculative.data.records import load_conversations

log = get_logger("speculative.regenerate")


class RegenerateConfig(StrictModel):
    out: str  # the JSONL written (and resumed)
    source: str = "sharegpt"  # the asset or a JSONL of conversations
    limit: int = Field(100, ge=1)  # conversations read from the source
    backend: Literal["hf", "vllm", "openai"] = "vllm"
    model: str = "smollm2-135m-instruct"
    max_new_tokens: int = Field(256, ge=1)
    chunk: int = Field(64, ge=1)  # prompts per generate call (the unit of resume)
    all_turns: bool = False  # regenerate every assistant turn, not only the first


def content_key(model: str, params: SamplingParams, messages: Sequence[dict[str, str]]) -> str:
    """Hash of everything that determines a regenerated reply."""
    blob = json.dumps({"model": model, "max_new_tokens": params.max_new_tokens, "temperature": params.temperature,
                       "top_p": params.top_p, "top_k": params.top_k, "seed": params.seed,
                       "messages": [[m["role"], m["content"]] for m in messages]}, sort_keys=True)
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()


def first_turn(conversation: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """System message(s) + the first user turn: the prompt of a single-turn regeneration."""
    head = []
    for m in conversation:
        head.append(dict(m))
        if m["role"] == "user":
            return head
    raise ValueError("conversation has no user turn")


def regenerate(conversations: Sequence[list[dict[str, str]]], backend: LLMBackend, out_path: str | Path,
               params: SamplingParams, *, model: str, chunk: int = 64, first_turn_only: bool = True,
               max_prompt_chars: int | None = 4000) -> dict[str, Any]:
    """Write {"id": content hash, "messages": [..., regenerated assistant turns]} rows; returns counts.

    first_turn_only: answer the first user turn (one batched call per chunk). Otherwise every assistant
    turn is replaced turn by turn, so later prompts see the regenerated history.
    """
    out_path = Path(out_path)
    done = {r.get("id") for r in read_jsonl(out_path)} if out_path.is_file() else set()
    counts = {"input": len(conversations), "reused": 0, "written": 0, "skipped_long_prompt": 0,
              "skipped_empty_reply": 0, "generated_tokens": 0}
    todo = []
    for conv in conversations:
        prompt = first_turn(conv) if first_turn_only else [dict(m) for m in conv]
        if max_prompt_chars is not None and sum(len(m["content"]) for m in prompt) > max_prompt_chars:
            counts["skipped_long_prompt"] += 1
            continue
        key = content_key(model, params, prompt)
        if key in done:
            counts["reused"] += 1
            continue
        done.add(key)  # duplicates in the input are generated once
        todo.append((key, prompt))
    t0 = time.perf_counter()
    with JsonlWriter(out_path) as writer:
        for start in progress(range(0, len(todo), chunk), desc="regenerate"):
            rows = todo[start:start + chunk]
            answer = _answer_first if first_turn_only else _answer_all
            convs = answer([r[1] for r in rows], backend, params, counts)
            for (key, _), conv in zip(rows, convs):
                if all(m["content"].strip() for m in conv):  # an empty reply would be a malformed record
                    writer.write({"id": key, "messages": conv})
                    counts["written"] += 1
                else:
                    counts["skipped_empty_reply"] += 1
    counts["seconds"] = time.perf_counter() - t0
    counts["tokens_per_s"] = counts["generated_tokens"] / max(counts["seconds"], 1e-9)
    log.info("regenerate: %s", counts)
    return counts


def _answer_first(prompts: list[list[dict[str, str]]], backend: LLMBackend, params: SamplingParams,
                  counts: dict[str, Any]) -> list[list[dict[str, str]]]:
    gens = backend.generate(prompts, params)
    counts["generated_tokens"] += sum(len(g.token_ids) for g in gens)
    return [[*p, {"role": "assistant", "content": g.text}] for p, g in zip(prompts, gens)]


def _answer_all(convs: list[list[dict[str, str]]], backend: LLMBackend, params: SamplingParams,
                counts: dict[str, Any]) -> list[list[dict[str, str]]]:
    convs = [[dict(m) for m in c] for c in convs]
    for turn in range(max(len(c) for c in convs)):
        need = [c for c in convs if turn < len(c) and c[turn]["role"] == "assistant"]
        if need:
            gens = backend.generate([c[:turn] for c in need], params)
            counts["generated_tokens"] += sum(len(g.token_ids) for g in gens)
            for c, g in zip(need, gens):
                c[turn]["content"] = g.text
    return convs


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_cli(RegenerateConfig, argv, description=__doc__, example="out=regen.jsonl limit=2000")
    convs, skips = load_conversations(cfg.source, limit=cfg.limit)
    backend = make_backend(cfg.backend, model=cfg.model)
    counts = regenerate(convs, backend, cfg.out, SamplingParams(max_new_tokens=cfg.max_new_tokens),
                        model=cfg.model, chunk=cfg.chunk, first_turn_only=not cfg.all_turns)
    print(json.dumps({**counts, "skipped_on_input": dict(skips), "out": cfg.out}))
    return 0
