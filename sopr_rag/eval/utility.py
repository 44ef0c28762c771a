"""Response utility: answer each query from the retrieved steps, then score the answer two ways.

- execution: fraction of gold steps present, in order, in the answer (no LLM; `metrics.execution_score`)
- utility: the LLM judge's rubric mean in [0, 1] (`judge.Verdict`); a reply that fails the schema is
  counted in `judge_rejects` and leaves that query without a utility score (never a made-up 0).
The same answer prompt is used for every method, so differences come from what was retrieved.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from runtime.config import StrictModel
from runtime.llm import LLMBackend, SamplingParams, make_backend
from runtime.logging import get_logger
from sopr_rag.eval.judge import make_judge
from sopr_rag.eval.metrics import execution_score
from sopr_rag.eval.queries import GoldQuery
from sopr_rag.types import Procedure, SearchResult

log = get_logger("sopr_rag.eval")

ANSWER_SYSTEM = ("You assist an operator. Using ONLY the procedure steps below, tell the operator what to do, "
                 "as a numbered list of steps in order. If the steps do not fit the question, say so.\n\n")


class UtilityConfig(StrictModel):
    enabled: bool = False
    backend: Literal["hf", "vllm", "openai"] = "hf"
    model: str | None = None
    base_url: str | None = None
    max_queries: int = Field(10, ge=0, description="per query set and method (answers cost an LLM call each)")
    context_steps: int = Field(8, ge=1)
    answer_max_new_tokens: int = Field(160, ge=1)
    judge_max_new_tokens: int = Field(120, ge=1)


def open_backend(cfg: UtilityConfig) -> LLMBackend:
    kw = {"base_url": cfg.base_url} if cfg.backend == "openai" and cfg.base_url else {}
    return make_backend(cfg.backend, model=cfg.model, **kw)


class UtilityScorer:
    def __init__(self, cfg: UtilityConfig, procedures: dict[str, Procedure], llm: LLMBackend | None = None):
        self.cfg, self.procedures = cfg, procedures
        self.llm = llm if llm is not None else open_backend(cfg)
        self.judge = make_judge(cfg.judge_max_new_tokens)
        self._pending: list[tuple[int, GoldQuery, SearchResult]] = []
        self._seen = 0
        self.stats = {"answers": 0, "judged": 0, "judge_rejects": 0, "reject_reasons": []}

    def plan(self, q: GoldQuery, result: SearchResult) -> None:
        """Queue this query for answering if it is within the per-method budget (first N queries)."""
        if self._seen < self.cfg.max_queries:
            self._pending.append((self._seen, q, result))
        self._seen += 1

    def answer_prompt(self, q: GoldQuery, result: SearchResult) -> list[dict[str, str]]:
        steps = result.hits[0].steps[: self.cfg.context_steps] if result.hits else []
        title = self.procedures[result.hits[0].doc_id].title if result.hits else "(nothing retrieved)"
        cited = "\n".join(f"{i}. {s['text']}" for i, s in enumerate(steps, 1)) or "(no steps)"
        return [{"role": "system", "content": ANSWER_SYSTEM + f'Procedure "{title}":\n{cited}'},
                {"role": "user", "content": q.query}]

    def flush(self, records: list[dict[str, Any]]) -> None:
        """Answer + judge every queued query (batched), writing scores into `records` by position."""
        jobs, self._pending, self._seen = self._pending, [], 0
        if not jobs:
            return
        gens = self.llm.generate([self.answer_prompt(q, r) for _, q, r in jobs],
                                 SamplingParams(max_new_tokens=self.cfg.answer_max_new_tokens))
        self.stats["answers"] += len(gens)
        judge_inputs = []
        for (pos, q, _), g in zip(jobs, gens):
            records[pos]["answer"] = g.text.strip()
            if q.gold_steps:
                records[pos]["execution"] = execution_score(q.gold_steps, g.text)
            gold = self.procedures.get(q.gold_docs[0])
            reference = "\n".join(f"{i}. {s.text}" for i, s in enumerate(gold.steps[:12], 1)) if gold else ""
            judge_inputs.append({"question": q.query, "title": gold.title if gold else q.gold_docs[0],
                                 "reference": reference or "\n".join(q.gold_steps), "answer": g.text.strip()})
        for (pos, _, _), verdict in zip(jobs, self.judge.run(self.llm, judge_inputs)):
            if verdict.ok:
                records[pos]["utility"] = verdict.value.utility
                records[pos]["judge"] = verdict.value.model_dump()
                self.stats["judged"] += 1
            else:
                records[pos]["judge_error"] = verdict.error
                self.stats["judge_rejects"] += 1
                self.stats["reject_reasons"].append(verdict.error)

    def summary(self) -> dict[str, Any]:
        s = dict(self.stats)
        s["reject_reasons"] = s["reject_reasons"][:20]
        s["backend"] = f"{self.cfg.backend}:{self.cfg.model or 'default'}"
        return s
