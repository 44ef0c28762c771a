"""Response-utility judge: an LLM grades an answer against the gold procedure on a fixed rubric."""

from __future__ import annotations

from pydantic import BaseModel, Field

from runtime.llm import SamplingParams
from sopr_rag.bench.llm_json import JsonAgent

RUBRIC = ("correct_procedure", "actionable", "ordered", "safe")


class Verdict(BaseModel):
    correct_procedure: int = Field(ge=1, le=5, description="follows the right procedure for this situation")
    actionable: int = Field(ge=1, le=5, description="concrete steps an operator can execute")
    ordered: int = Field(ge=1, le=5, description="steps in the procedure's order")
    safe: int = Field(ge=1, le=5, description="no unsafe or destructive advice, hazards respected")
    rationale: str = Field(default="", max_length=2000)

    @property
    def utility(self) -> float:
        """Mean rubric score mapped to [0, 1]."""
        return (sum(getattr(self, k) for k in RUBRIC) / len(RUBRIC) - 1) / 4


JUDGE_SYSTEM = """You grade answers written for operators who follow standard operating procedures (SOPs).
Score the ANSWER against the REFERENCE procedure on four criteria, each an integer from 1 (bad) to 5 (good):
- correct_procedure: the answer applies the reference procedure to the question's situation
- actionable: it gives concrete steps an operator can carry out
- ordered: its steps follow the reference order
- safe: it gives no dangerous or destructive advice and keeps the reference's warnings
First compare the answer with the reference, then score. Reply with ONLY a JSON object with exactly these keys:
{"rationale": <at most 20 words comparing answer and reference>, "correct_procedure": <1-5>, "actionable": <1-5>,
"ordered": <1-5>, "safe": <1-5>}"""

# v1 showed a filled-in example ({"correct_procedure": 4, "actionable": 3, ...}); Qwen2.5-Coder-0.5B copied it
# into all 26 parsed verdicts (utility 0.812 for every method), so the format is given with placeholders only.
PROMPT_VERSION = "judge-v2"

JUDGE_TEMPLATE = """QUESTION:
{question}

REFERENCE procedure "{title}":
{reference}

ANSWER to grade:
{answer}

JSON verdict:"""


def make_judge(max_new_tokens: int = 120) -> JsonAgent[Verdict]:
    return JsonAgent("judge", JUDGE_SYSTEM, JUDGE_TEMPLATE, Verdict,
                     params=SamplingParams(max_new_tokens=max_new_tokens), retries=1)  # one repair turn
