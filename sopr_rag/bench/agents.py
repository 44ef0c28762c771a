"""The four benchmark agents: fixed prompts + output schemas (each one a `JsonAgent`).

writer      writes one operator question of a given intent about one procedure, citing its steps
grounding   checks the cited steps really answer the question
ambiguity   picks which of several near-twin procedures answers the question (gold must be the pick)
dedup       says whether the question repeats an already accepted one
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from runtime.llm import SamplingParams
from sopr_rag.bench.llm_json import JsonAgent

INTENTS = ("entity", "causal", "flow")

INTENT_GUIDE = {
    "entity": "ask about a specific component, alert, parameter, command or value named in the procedure",
    "causal": "describe a symptom or failure the operator observes and ask what causes it / what to do",
    "flow": "ask what to do next or in what order, for a situation in the middle of the procedure",
}


class WrittenQuestion(BaseModel):
    question: str = Field(min_length=12, max_length=400)
    cited_steps: list[str] = Field(min_length=1, max_length=8)  # step numbers as written in the document
    difficulty: Literal["easy", "hard"] = "easy"

    @field_validator("cited_steps", mode="before")
    @classmethod
    def _numbers_as_strings(cls, v: object) -> object:
        return [str(x).strip().rstrip(".") for x in v] if isinstance(v, list) else v


class GroundingVerdict(BaseModel):
    grounded: bool
    reason: str = Field(default="", max_length=500)


class AmbiguityVerdict(BaseModel):
    answer: str = Field(min_length=1, max_length=20)  # a candidate letter, or "several" / "none"
    reason: str = Field(default="", max_length=500)


class DedupVerdict(BaseModel):
    duplicate: bool
    duplicate_of: str | int | None = None


WRITER = JsonAgent(
    "writer",
    "You write realistic questions that an on-call operator would ask, to test a search system over standard "
    "operating procedures. Write like an operator in the middle of an incident: describe what you see in your "
    "own words. Do NOT copy sentences or the title from the procedure. Reply with ONLY a JSON object with "
    'exactly these keys: {"question": <string>, "cited_steps": <list of step numbers as strings>, '
    '"difficulty": <"easy" or "hard">}\n'
    "cited_steps are the numbers of the procedure steps that answer the question, in order, chosen from the "
    'valid step numbers given. difficulty is "hard" if the question avoids the procedure\'s own terms, '
    'else "easy".',
    "Procedure: {title}\nScope: {scope}\nSteps:\n{steps}\nValid step numbers: {numbers}\n\n"
    "Write one {intent} question: {guide}.\nJSON:",
    WrittenQuestion, params=SamplingParams(max_new_tokens=160, temperature=0.7, top_p=0.95, seed=0), retries=1)

GROUNDING = JsonAgent(
    "grounding",
    "You check benchmark questions. Decide whether the cited procedure steps contain the answer to the "
    'question. Reply with ONLY a JSON object: {"grounded": true, "reason": "one sentence"}',
    "Question: {question}\n\nCited steps:\n{steps}\n\nDo these steps answer the question? JSON:",
    GroundingVerdict, params=SamplingParams(max_new_tokens=80), retries=1)

AMBIGUITY = JsonAgent(
    "ambiguity",
    "You check benchmark questions for ambiguity. Several similar procedures are listed, each with a letter. "
    "Pick the ONE procedure that answers the question. If more than one fits equally well, answer \"several\". "
    'Reply with ONLY a JSON object: {"answer": "B", "reason": "one sentence"}',
    "Question: {question}\n\nProcedures:\n{candidates}\n\nWhich procedure answers the question? JSON:",
    AmbiguityVerdict, params=SamplingParams(max_new_tokens=80), retries=1)

DEDUP = JsonAgent(
    "dedup",
    "You remove duplicate questions from a benchmark. A duplicate asks for the same information as an earlier "
    "question, even if worded differently. Reply with ONLY a JSON object: "
    '{"duplicate": false, "duplicate_of": null}  or  {"duplicate": true, "duplicate_of": "<id>"}',
    "New question: {question}\n\nEarlier questions:\n{earlier}\n\nIs the new question a duplicate? JSON:",
    DedupVerdict, params=SamplingParams(max_new_tokens=40), retries=1)
