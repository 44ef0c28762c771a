"""The component glossary, built at index time: per runbook its component, per component what it does.

    builder = GlossaryBuilder(cfg, cards=card_builder)    # shares the card builder's LLM and cache file
    glossary = builder.build(procs, previous)              # experts.components.Glossary (profiles not embedded)

Two small questions instead of a whole card (glossary_prompts.py), each batched into one generate() call,
decoded under a tiny JSON schema, validated, one repair turn, cached by content (GateCache JSONL, like
cards.llm.CardBuilder): (A) per runbook, its component, with the folder / title rule as the fallback
(glossary_rules.py); (B) once per distinct component, its function and aliases, with 3 of its titles as
context. Only B is corpus-level, so it is asked again only for a component whose name or first three
titles (by doc id) changed: an incremental update and a fresh build ask the same questions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from runtime.llm import SamplingParams
from runtime.logging import get_logger
from sopr_rag.cards import glossary_prompts as gp
from sopr_rag.cards.glossary_rules import folder_names, merge_names, rule_names
from sopr_rag.cards.llm import (
    CardBuilder,
    CardStats,
    card_cache,
    card_source,
    cards_backend,
    default_model,
    generate_counted,
)
from sopr_rag.cards.schema import Component
from sopr_rag.config import CardsConfig
from sopr_rag.experts.components import Glossary
from sopr_rag.retrieval.identifiers import humanize
from sopr_rag.types import Procedure

log = get_logger("sopr_rag.cards")
CONTEXT_TITLES = 3  # titles shown with the describe question


class GlossaryBuilder:
    def __init__(self, cfg: CardsConfig, llm: Any = None, cards: CardBuilder | None = None):
        self.cfg, self._llm, self._cards = cfg, llm, cards
        self.model = cards.model if cards else cfg.model or (getattr(llm, "name", "custom") if llm else default_model())
        self.cache = cards.cache if cards else card_cache(cfg)  # one writer per cache file
        self.stats = CardStats()

    @property
    def identity(self) -> str:
        """Everything that changes the answers: in every cache key and in the index manifest."""
        c = self.cfg
        return (f"{gp.VERSION}|{c.backend}|{self.model}|{gp.EXCERPT_CHARS}|{gp.NAME_TOKENS}/{gp.DESCRIBE_TOKENS}"
                f"|repair={c.repair}|structured={c.structured}")

    def llm(self) -> Any:
        if self._llm is None and self._cards is not None:
            self._llm = self._cards.llm()  # one model in memory for cards and glossary
        if self._llm is None:
            self._llm = cards_backend(self.cfg, self.model, "the component glossary")
        return self._llm

    def _key(self, *parts: str) -> str:
        return hashlib.sha256("\x00".join((self.identity, *parts)).encode()).hexdigest()[:32]

    def build(self, procs: dict[str, Procedure], previous: Glossary | None = None) -> Glossary:
        """The glossary of `procs` (the whole corpus); answers of `previous` (same identity) are reused
        for documents whose content is unchanged."""
        old = previous.docs if previous else {}
        answers = {d: old[d]["answer"] for d, p in procs.items() if d in old and old[d]["hash"] == p.content_hash}
        answers.update(self.name_components([p for d, p in sorted(procs.items()) if d not in answers]))
        rules = rule_names(procs.values())
        chosen = {d: (answers[d], "llm") if answers.get(d) else (rules[d], "rule")
                  for d in sorted(procs) if answers.get(d) or rules.get(d)}
        groups = merge_names({d: name for d, (name, _) in chosen.items()})
        contexts = [(g.name, [humanize(procs[d].title) for d in g.docs[:CONTEXT_TITLES]]) for g in groups]
        described = self.describe(contexts)
        entries = []
        for g in groups:
            desc = described.get(g.name) or {"function": "", "aliases": []}
            aliases = list(dict.fromkeys(a for a in desc["aliases"] + g.variants if a.lower() != g.name.lower()))
            profile = Component(name=g.name, aliases=aliases, function=desc["function"]).profile()
            entries.append({"key": g.key, "name": g.name, "aliases": aliases, "function": desc["function"],
                            "profile": profile, "docs": g.docs})
        docs = {d: {"hash": p.content_hash, "answer": answers.get(d), "name": chosen.get(d, (None,))[0],
                    "by": chosen.get(d, (None, None))[1]} for d, p in sorted(procs.items())}
        return Glossary(entries=entries, docs=docs)

    def name_components(self, procs: Sequence[Procedure]) -> dict[str, str | None]:
        """Question A: doc id -> the LLM's validated component name (None: the rule decides)."""
        items = []
        for p in procs:
            folder = (folder_names(p.doc_id) or [None])[-1]
            words = gp.doc_words(f"{p.title}\n{p.text}", folder)
            items.append((self._key("name", folder or "", p.content_hash),
                          gp.name_messages(card_source(p, gp.EXCERPT_CHARS), folder),
                          lambda r, t=p.title, w=words: gp.parse_name(r, t, w), {"doc_id": p.doc_id}))
        return dict(zip([p.doc_id for p in procs], self._cached(items, gp.NAME_SCHEMA, gp.NAME_TOKENS)))

    def describe(self, contexts: Sequence[tuple[str, list[str]]]) -> dict[str, dict | None]:
        """Question B: component name -> {"function", "aliases"} (None when no valid answer)."""
        items = [(self._key("describe", name, *titles), gp.describe_messages(name, titles),
                  lambda r, n=name, t=titles: gp.parse_description(r, n, t), {"name": name})
                 for name, titles in contexts]
        return dict(zip([n for n, _ in contexts], self._cached(items, gp.DESCRIBE_SCHEMA, gp.DESCRIBE_TOKENS)))

    def _cached(self, items: list[tuple[str, list, Callable, dict]], schema: dict, max_tokens: int) -> list:
        """Per (cache key, messages, parser, what to log) item: its cached value, else the validated answer
        (None when there is none after the repair turn: cached too, so it is not asked again)."""
        out: list = [None] * len(items)
        todo = []
        for i, (key, *_) in enumerate(items):
            hit = self.cache.get(key)
            if hit is None:
                todo.append(i)
            else:
                self.stats.cache_hits += 1
                out[i] = hit.get("value")
        results = self._ask([items[i][1] for i in todo], [items[i][2] for i in todo], schema, max_tokens)
        for i, (value, err, reply) in zip(todo, results):
            self.cache.put(items[i][0], {**items[i][3], "value": value, "error": err,
                                         **({"reply": reply[:500]} if value is None else {})})  # to tune prompts
            out[i] = value
        return out

    def _ask(self, prompts: list[list[dict]], parsers: list[Callable], schema: dict, max_tokens: int) -> list[tuple]:
        """(value or None, error, last reply) per prompt: one batched call, one batched repair turn."""
        if not prompts:
            return []
        replies = self._generate(prompts, schema, max_tokens)
        results = [parse(r) for parse, r in zip(parsers, replies)]
        bad = [i for i, (value, _) in enumerate(results) if value is None]
        if bad and self.cfg.repair:
            self.stats.repairs += len(bad)
            fixes = self._generate([gp.repair_turn(prompts[i], replies[i], results[i][1]) for i in bad],
                                   schema, max_tokens)
            for i, reply in zip(bad, fixes):
                replies[i], results[i] = reply, parsers[i](reply)
                self.stats.repaired += results[i][0] is not None
        self.stats.failures += sum(value is None for value, _ in results)
        return [(value, err, reply) for (value, err), reply in zip(results, replies)]

    def _generate(self, prompts: list[list[dict]], schema: dict, max_tokens: int) -> list[str]:
        params = SamplingParams(max_new_tokens=max_tokens, json_schema=schema if self.cfg.structured else None)
        return generate_counted(self.llm(), prompts, params, self.stats)


def make_glossary_builder(cfg: CardsConfig, cards: CardBuilder | None = None, llm: Any = None) -> Any:
    """The builder for `cards.glossary: true`, else None: from the knowledge base (`glossary_source:
    knowledge`), or asking the LLM (sharing `cards`' LLM and cache)."""
    if not cfg.glossary:
        return None
    if cfg.glossary_source == "knowledge":
        from sopr_rag.cards.knowledge import KnowledgeBase, KnowledgeGlossaryBuilder

        return KnowledgeGlossaryBuilder(KnowledgeBase.load(cfg.knowledge))
    return GlossaryBuilder(cfg, llm, cards)
