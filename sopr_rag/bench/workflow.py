"""Benchmark construction over any SOP corpus: write -> copy check -> ground -> disambiguate -> dedup.

Each stage filters the candidates of the previous one; every reject is logged with its stage and
reason. Near-twin candidates for the ambiguity check come from hybrid (BM25 + dense RRF) retrieval
over the whole corpus, so "is the gold unique?" is asked against the procedures a retriever would
actually confuse it with. Accepted questions are written in the evaluation schema (`GoldQuery`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from runtime.checkpoint import atomic_write_json, atomic_write_text
from runtime.config import StrictModel
from runtime.llm import LLMBackend
from runtime.logging import get_logger
from runtime.results import with_provenance
from sopr_rag.bench import agents
from sopr_rag.retrieval.dense import DenseIndex, EmbedFn
from sopr_rag.retrieval.fusion import rrf
from sopr_rag.retrieval.lexical import BM25Index, tokenize
from sopr_rag.types import Procedure

log = get_logger("sopr_rag.bench")


class BenchConfig(StrictModel):
    intents: list[str] = Field(default_factory=lambda: list(agents.INTENTS))
    max_docs: int | None = Field(None, ge=1)  # first N procedures with steps (sorted by doc id); None = all
    seed: int = 0
    max_steps_shown: int = Field(12, ge=1)
    twins: int = Field(3, ge=0, description="near-twin procedures shown to the ambiguity checker")
    dedup_neighbours: int = Field(5, ge=0, description="accepted questions shown to the deduplicator")
    copy_ngram: int = Field(8, ge=3, description="a shared run of this many words with the document = copying")
    id_prefix: str = "bench"


@dataclass
class Candidate:
    doc_id: str
    intent: str
    question: str = ""
    steps: list[str] = field(default_factory=list)  # cited step texts, document order
    difficulty: str = "easy"


@dataclass
class BenchStats:
    docs: int = 0
    skipped_docs: dict[str, str] = field(default_factory=dict)
    attempted: int = 0
    accepted: int = 0
    rejects_by_stage: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage

    @property
    def yield_rate(self) -> float:
        return self.accepted / self.attempted if self.attempted else 0.0


def copies_document(question: str, proc: Procedure, n: int) -> bool:
    """True if the question shares a run of `n` consecutive words with the document (verbatim copying)."""
    def grams(text: str) -> set[tuple[str, ...]]:
        w = [t.lower().strip(".,:;!?()`'\"") for t in text.split()]
        return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}
    return bool(grams(question) & grams(proc.text))


class BenchBuilder:
    def __init__(self, procedures: dict[str, Procedure], llm: LLMBackend, cfg: BenchConfig | None = None,
                 embedder: EmbedFn | None = None):
        self.procs, self.llm, self.cfg = procedures, llm, cfg or BenchConfig()
        bad = [i for i in self.cfg.intents if i not in agents.INTENTS]
        if bad:
            raise ValueError(f"unknown intents {bad}; choose from {agents.INTENTS}")
        ids = sorted(procedures)
        self.bm25 = BM25Index().build(ids, [f"{procedures[d].title}\n{procedures[d].text}" for d in ids])
        self.dense = DenseIndex(embedder)
        self.dense.add(ids, [f"{procedures[d].title}. {procedures[d].scope}" for d in ids])
        self.rejects: list[dict[str, Any]] = []
        self.stats = BenchStats()

    # ------------------------------------------------------------------ stages
    def _reject(self, c: Candidate, stage: str, reason: str, raw: str = "") -> None:
        self.stats.rejects_by_stage[stage] = self.stats.rejects_by_stage.get(stage, 0) + 1
        self.rejects.append({"doc_id": c.doc_id, "intent": c.intent, "stage": stage, "reason": reason,
                             "question": c.question, "raw": raw[:500]})

    def _numbers(self, doc_id: str) -> list[str]:
        return [s.number.rstrip(".") for s in self.procs[doc_id].steps[: self.cfg.max_steps_shown]]

    def _steps_block(self, proc: Procedure) -> str:
        return "\n".join(f"{s.number}. {s.text}" for s in proc.steps[: self.cfg.max_steps_shown])

    def write(self, docs: Sequence[str]) -> list[Candidate]:
        jobs = [Candidate(d, i) for d in docs for i in self.cfg.intents]
        inputs = [{"title": self.procs[c.doc_id].title, "scope": self.procs[c.doc_id].scope[:400] or "-",
                   "steps": self._steps_block(self.procs[c.doc_id]), "numbers": ", ".join(self._numbers(c.doc_id)),
                   "intent": c.intent, "guide": agents.INTENT_GUIDE[c.intent], "doc_id": c.doc_id} for c in jobs]

        def cites_known_steps(q: agents.WrittenQuestion, x: dict[str, Any]) -> str | None:
            unknown = [n for n in q.cited_steps if n not in self._numbers(x["doc_id"])]
            return (f"cites steps not in the procedure: {unknown}; valid step numbers are "
                    f"{', '.join(self._numbers(x['doc_id']))}") if unknown else None

        out = []
        for c, reply in zip(jobs, agents.WRITER.run(self.llm, inputs, check=cites_known_steps)):
            if not reply.ok:
                self._reject(c, "writer", reply.error or "invalid", reply.raw)
                continue
            q = reply.value
            c.question, c.difficulty = q.question.strip(), q.difficulty
            by_number = {s.number.rstrip("."): s.text for s in self.procs[c.doc_id].steps}
            unknown = [n for n in q.cited_steps if n not in by_number]
            if unknown:
                self._reject(c, "writer", f"cites steps not in the procedure: {unknown}", reply.raw)
                continue
            order = list(by_number)
            c.steps = [by_number[n] for n in sorted(dict.fromkeys(q.cited_steps), key=order.index)]
            if copies_document(c.question, self.procs[c.doc_id], self.cfg.copy_ngram):
                self._reject(c, "copy", f"shares {self.cfg.copy_ngram}+ consecutive words with the document")
                continue
            out.append(c)
        return out

    def ground(self, cands: list[Candidate]) -> list[Candidate]:
        inputs = [{"question": c.question, "steps": "\n".join(f"- {s}" for s in c.steps)} for c in cands]
        return self._filter(cands, agents.GROUNDING.run(self.llm, inputs), "grounding",
                            lambda v: (v.grounded, v.reason))

    def twins(self, c: Candidate) -> list[str]:
        lex = [d for d, _ in self.bm25.search(c.question, 20)]
        den = [d for d, _ in self.dense.search(c.question, 20)]
        return [d for d, _ in rrf([lex, den]) if d != c.doc_id][: self.cfg.twins]

    def disambiguate(self, cands: list[Candidate]) -> list[Candidate]:
        rng = random.Random(self.cfg.seed)
        inputs, gold_letters = [], []
        for c in cands:
            docs = [c.doc_id] + self.twins(c)
            rng.shuffle(docs)
            letters = [chr(ord("A") + i) for i in range(len(docs))]
            gold_letters.append(letters[docs.index(c.doc_id)])
            inputs.append({"question": c.question, "candidates": "\n".join(
                f"{L}. {self.procs[d].title}: {(self.procs[d].scope or self.procs[d].text)[:300]}"
                for L, d in zip(letters, docs))})
        replies = agents.AMBIGUITY.run(self.llm, inputs)
        return self._filter(cands, replies, "ambiguity",
                            lambda v, g=iter(gold_letters): _letter_check(v.answer, next(g)))

    def dedup(self, cands: list[Candidate], accepted: list[dict[str, Any]]) -> list[Candidate]:
        """Sequential: each question is compared with the accepted questions closest to it (BM25 overlap)."""
        kept = []
        for c in cands:
            earlier = sorted(accepted, key=lambda a: -_overlap(c.question, a["query"]))[: self.cfg.dedup_neighbours]
            if earlier:
                listing = "\n".join(f"[{a['id']}] {a['query']}" for a in earlier)
                reply = agents.DEDUP.run(self.llm, [{"question": c.question, "earlier": listing}])[0]
                if not reply.ok:
                    self._reject(c, "dedup", reply.error or "invalid", reply.raw)
                    continue
                if reply.value.duplicate:
                    self._reject(c, "dedup", f"duplicate of {reply.value.duplicate_of}", reply.raw)
                    continue
            kept.append(c)
            accepted.append(self._record(c, len(accepted)))
        return kept

    def _filter(self, cands: list[Candidate], replies: list, stage: str,
                verdict: Callable[[Any], tuple[bool, str]]) -> list[Candidate]:
        out = []
        for c, r in zip(cands, replies):
            if not r.ok:
                self._reject(c, stage, r.error or "invalid", r.raw)
                continue
            ok, reason = verdict(r.value)
            if ok:
                out.append(c)
            else:
                self._reject(c, stage, reason or "rejected", r.raw)
        return out

    def _record(self, c: Candidate, n: int) -> dict[str, Any]:
        return {"id": f"{self.cfg.id_prefix}-{n + 1:04d}", "query": c.question, "gold_docs": [c.doc_id],
                "gold_steps": c.steps, "intent": c.intent, "difficulty": c.difficulty,
                "source": f"bench:{self.llm.name}"}

    # ------------------------------------------------------------------ run
    def run(self) -> list[dict[str, Any]]:
        docs = []
        for d in sorted(self.procs):
            if self.procs[d].steps:
                docs.append(d)
            else:
                self.stats.skipped_docs[d] = "no steps parsed"
        docs = docs[: self.cfg.max_docs] if self.cfg.max_docs else docs
        self.stats.docs = len(docs)
        self.stats.attempted = len(docs) * len(self.cfg.intents)
        accepted: list[dict[str, Any]] = []
        stages: list[tuple[str, Callable[[Any], list[Candidate]]]] = [
            ("writer", lambda _: self.write(docs)), ("grounding", self.ground),
            ("ambiguity", self.disambiguate), ("dedup", lambda c: self.dedup(c, accepted))]
        cands: Any = None
        for stage, fn in stages:
            t0 = time.perf_counter()
            cands = fn(cands)
            self.stats.seconds[stage] = round(time.perf_counter() - t0, 2)
        self.stats.accepted = len(accepted)
        log.info("benchmark: %d/%d accepted (%.0f%%); rejects %s", len(accepted), self.stats.attempted,
                 100 * self.stats.yield_rate, self.stats.rejects_by_stage)
        return accepted


def _letter_check(answer: str, gold: str) -> tuple[bool, str]:
    a = answer.strip().strip(".").upper()
    if a == gold:
        return True, ""
    return False, f"checker picked '{answer}', gold is '{gold}' (not unique or wrong)"


def _overlap(a: str, b: str) -> float:
    ta, tb = set(tokenize(a)), set(tokenize(b))
    return len(ta & tb) / max(len(ta | tb), 1)


def write_outputs(records: list[dict[str, Any]], builder: BenchBuilder, out: str | Path) -> dict[str, Any]:
    """Questions JSONL, rejects JSONL and a stats JSON, each written atomically."""
    import json

    out = Path(out)
    atomic_write_text(out, "".join(json.dumps(r) + "\n" for r in records))
    rejects = out.with_name(out.name.removesuffix(".jsonl") + ".rejects.jsonl")
    atomic_write_text(rejects, "".join(json.dumps(r) + "\n" for r in builder.rejects))
    s = builder.stats
    stats = {"docs": s.docs, "attempted": s.attempted, "accepted": s.accepted, "yield": s.yield_rate,
             "rejects_by_stage": s.rejects_by_stage, "seconds": s.seconds,
             "seconds_per_accepted": round(sum(s.seconds.values()) / s.accepted, 2) if s.accepted else None,
             "skipped_docs": s.skipped_docs, "backend": builder.llm.name,
             "config": builder.cfg.model_dump(), "out": str(out), "rejects": str(rejects)}
    atomic_write_json(out.with_name(out.name.removesuffix(".jsonl") + ".stats.json"),
                      with_provenance(stats, config=stats["config"]))
    return stats
