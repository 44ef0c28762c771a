"""LLM-built Procedure Cards at index time: batched prompts decoded under the card's JSON schema where
the backend can (cfg.structured), pydantic + content validation (schema.py), one repair turn, a cache.

    builder = CardBuilder(cfg)                      # the backend is created only when a call is needed
    cards = builder.build(procedures)               # doc id -> LLMCard | None; builder.stats -> telemetry

Cached per (prompt version, model, limits, document content hash) in an append-only JSONL, failures
included, so re-indexing pays only for added or changed documents and an unchanged corpus loads no model.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from runtime.llm import SamplingParams
from runtime.logging import get_logger, progress
from sopr_rag.cards.schema import (
    CARD_JSON_SCHEMA,
    MAX_ALIASES,
    MAX_COMPONENTS,
    MAX_ITEM_WORDS,
    MAX_ITEMS,
    LLMCard,
    parse_card,
)
from sopr_rag.config import CardsConfig
from sopr_rag.gate.cache import GateCache
from sopr_rag.types import Procedure

log = get_logger("sopr_rag.cards")
# v2: placeholder format instead of a worked example, bounded lists, stricter validation, guided decoding
PROMPT_VERSION = "card-v2"
LARGE_MODEL, SMALL_MODEL = "qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct"

SYSTEM = "You turn an operations runbook into a Procedure Card. Reply with one JSON object and nothing else."
# The format as placeholders, not a worked example: a 0.5B model copied a worked example's content
# verbatim into cards (v1: a chiller's symptoms on a RAID runbook). A placeholder has nothing plausible to
# copy, and a copied placeholder is caught by parse_card(example=EXAMPLE) and named in the repair turn.
EXAMPLE = json.dumps({
    "components": [{"name": "<a part the runbook names>", "aliases": ["<another name for it>"],
                    "function": "<what it does, in plain words>"}],
    "symptoms": ["<what an operator notices>"],
    "conditions": ["<when this procedure applies>"],
    "causes": ["<a likely root cause>"],
    "actions": ["<the first step>", "<the next step>"]})
INSTRUCTIONS = (
    f"Write the Procedure Card of this runbook as one JSON object in this format:\n{EXAMPLE}\n"
    "Replace every <...> with text about this runbook:\n"
    f'- "components": 1 to {MAX_COMPONENTS} software or hardware parts the runbook is about (a program, service, '
    'daemon, device, disk, database or network link; never the alert, a runbook or a step), most important '
    'first. "name": the part as the runbook writes it, not the alert name. '
    f'"aliases": 1 to {MAX_ALIASES} other names an operator might use, in plain words. '
    '"function": what the part does, in plain words, without repeating its name.\n'
    f'- "symptoms": 1 to {MAX_ITEMS} things an operator would notice, in everyday words (not the alert name).\n'
    f'- "conditions": up to {MAX_ITEMS}: when this procedure applies.\n'
    f'- "causes": 1 to {MAX_ITEMS} likely root causes, different from the symptoms.\n'
    f'- "actions": 1 to {MAX_ITEMS} main steps, in order.\n'
    f"Every item under {MAX_ITEM_WORDS} words. Never repeat one sentence in several lists.")


def default_model() -> str:
    """Qwen2.5-Coder-0.5B when `make assets-large` installed it, else the embedded SmolLM2."""
    from runtime.assets.models import MODELS
    from runtime.assets.registry import AssetMissingError, package_dir

    spec = MODELS[LARGE_MODEL]
    try:
        package_dir(spec.module, spec.pip)
        return LARGE_MODEL
    except AssetMissingError:
        return SMALL_MODEL


def card_source(proc: Procedure, max_chars: int) -> str:
    """The SOP as the LLM sees it: title + section texts, code blocks and link targets dropped, clipped."""
    body = re.sub(r"```.*?```", " ", proc.text, flags=re.S)
    body = re.sub(r"^---\n.*?\n---\n", "", body, flags=re.S)  # front matter
    body = re.sub(r"\]\([^)]*\)", "]", body)
    body = re.sub(r"\n{3,}", "\n\n", body).strip()
    text = f"Title: {proc.title}\n{body}"
    return text if len(text) <= max_chars else text[:max_chars].rsplit(" ", 1)[0] + " ..."


def _messages(source: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Runbook:\n<<<\n{source}\n>>>\n\n{INSTRUCTIONS}"}]


def _repair(source: str, reply: str, error: str) -> list[dict[str, str]]:
    return _messages(source) + [
        {"role": "assistant", "content": reply[:2000]},
        {"role": "user", "content": f"That reply cannot be used: {error}. Reply again with the corrected JSON "
                                    "object only."}]


@dataclass
class CardStats:
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_seconds: float = 0.0
    cache_hits: int = 0
    repairs: int = 0  # replies that failed validation and got the repair turn
    repaired: int = 0  # ... and passed after it
    failures: int = 0  # no valid card after the repair turn (the rule card is used alone)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["llm_seconds"] = round(self.llm_seconds, 3)
        return d


def card_cache(cfg: CardsConfig) -> GateCache:
    """The append-only answer cache shared by the card and glossary builders (one writer per file)."""
    from runtime.paths import cache_dir

    return GateCache(cfg.cache_path or cache_dir("sopr_rag") / "card_cache.jsonl")


def cards_backend(cfg: CardsConfig, model: str, purpose: str) -> Any:
    from runtime.llm import make_backend

    kw = {"base_url": cfg.base_url} if cfg.backend == "openai" and cfg.base_url else {}
    log.info("loading %s (%s) for %s", model, cfg.backend, purpose)
    return make_backend(cfg.backend, model=model, **kw)


def generate_counted(llm: Any, prompts: list[list[dict[str, str]]], params: SamplingParams,
                     stats: CardStats) -> list[str]:
    """One batched generate() call, its calls / tokens / seconds added to `stats` (index telemetry)."""
    t0 = time.perf_counter()
    gens = llm.generate(prompts, params)
    stats.llm_seconds += time.perf_counter() - t0
    stats.llm_calls += len(prompts)
    stats.prompt_tokens += sum(g.prompt_tokens for g in gens)
    stats.completion_tokens += sum(len(g.token_ids) for g in gens)
    return [g.text for g in gens]


class CardBuilder:
    def __init__(self, cfg: CardsConfig, llm: Any = None):
        self.cfg = cfg
        self._llm = llm
        self.model = cfg.model or (getattr(llm, "name", "custom") if llm is not None else default_model())
        self.cache = card_cache(cfg)
        self.stats = CardStats()

    @property
    def identity(self) -> str:
        """Everything that changes what the LLM returns; part of the cache key and the index manifest."""
        c = self.cfg
        return (f"{PROMPT_VERSION}|{c.backend}|{self.model}|{c.max_doc_chars}|{c.max_new_tokens}|repair={c.repair}"
                f"|structured={c.structured}")

    def llm(self) -> Any:
        if self._llm is None:
            self._llm = cards_backend(self.cfg, self.model, "Procedure Cards")
        return self._llm

    def key(self, proc: Procedure) -> str:
        return hashlib.sha256(f"{self.identity}\x00{proc.content_hash}".encode()).hexdigest()[:32]

    def build(self, procs: Sequence[Procedure]) -> dict[str, LLMCard | None]:
        """doc id -> validated card (None when the LLM gave none); only uncached documents cost calls."""
        out: dict[str, LLMCard | None] = {}
        todo: list[Procedure] = []
        for p in procs:
            hit = self.cache.get(self.key(p))
            if hit is None:
                todo.append(p)
            else:
                self.stats.cache_hits += 1
                out[p.doc_id] = LLMCard.model_validate(hit["card"]) if hit.get("card") else None
        for start in progress(range(0, len(todo), self.cfg.batch_size), desc="LLM cards"):
            out.update(self._build_batch(todo[start:start + self.cfg.batch_size]))
        return out

    def _build_batch(self, procs: list[Procedure]) -> dict[str, LLMCard | None]:
        sources = [card_source(p, self.cfg.max_doc_chars) for p in procs]
        replies = self._generate([_messages(s) for s in sources])
        results = [parse_card(r, s, EXAMPLE) for r, s in zip(replies, sources)]
        bad = [i for i, (card, _) in enumerate(results) if card is None]
        first_errors = {i: results[i][1] for i in bad}
        repaired: set[int] = set()
        if bad and self.cfg.repair:
            self.stats.repairs += len(bad)
            fixes = self._generate([_repair(sources[i], replies[i], results[i][1] or "") for i in bad])
            for i, reply in zip(bad, fixes):
                replies[i] = reply
                card, err = parse_card(reply, sources[i], EXAMPLE)
                if card is not None:
                    repaired.add(i)
                results[i] = (card, err if card is None else None)
        self.stats.repaired += len(repaired)
        out = {}
        for i, (p, (card, err)) in enumerate(zip(procs, results)):
            if card is None:
                self.stats.failures += 1
                log.warning("no valid card for %s: %s", p.doc_id, err)
            entry = {"doc_id": p.doc_id, "card": card.model_dump() if card else None, "error": err,
                     "repaired": i in repaired}
            if i in first_errors:  # which rule fired first, and the last reply of a failure: to tune prompts
                entry["first_error"] = first_errors[i]
            if card is None:
                entry["reply"] = replies[i][:2000]
            self.cache.put(self.key(p), entry)
            out[p.doc_id] = card
        return out

    def _generate(self, prompts: list[list[dict[str, str]]]) -> list[str]:
        schema = CARD_JSON_SCHEMA if self.cfg.structured else None  # guided decoding where the backend can
        return generate_counted(self.llm(), prompts, SamplingParams(max_new_tokens=self.cfg.max_new_tokens,
                                                                    json_schema=schema), self.stats)


def make_card_builder(cfg: CardsConfig, llm: Any = None) -> CardBuilder | None:
    """The builder for `cards.mode=llm`, None for rule-only cards."""
    return CardBuilder(cfg, llm) if cfg.mode == "llm" else None
