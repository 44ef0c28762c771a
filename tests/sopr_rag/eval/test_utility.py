import json

import pytest

from sopr_rag.bench.scripted import ScriptedBackend
from sopr_rag.eval.harness import RetrievalEvalConfig, breakdown, run_method
from sopr_rag.eval.judge import Verdict
from sopr_rag.eval.queries import GoldQuery, QuerySet
from sopr_rag.eval.utility import UtilityConfig, UtilityScorer
from sopr_rag.types import Procedure, SearchHit, SearchResult, Step

PROC = Procedure("pump.md", "Pump cavitation", "text", "h",
                 steps=[Step("1", "Stop the pump"), Step("2", "Refill the reservoir"), Step("3", "Restart the pump")])


class OneDoc:
    name = "one"

    def search(self, query, top_k=10):
        return SearchResult(query, [SearchHit("pump.md", 1.0, steps=[{"number": s.number, "text": s.text}
                                                                     for s in PROC.steps])])


def judge_reply(prompt: str) -> str:
    if "BROKEN" in prompt:
        return "I think it is fine."  # no JSON: must be a counted reject, not a score
    return 'Sure. {"correct_procedure": 5, "actionable": 4, "ordered": 5, "safe": 3, "rationale": "ok"}'


def test_answers_are_judged_and_scored_with_rejects_counted():
    llm = ScriptedBackend([("JSON verdict", judge_reply),
                           ("numbered list", "1. Stop the pump.\n2. Refill the reservoir.\n3. Turn it back on.")])
    qs = QuerySet("t", [GoldQuery(id=i, query=q, gold_docs=["pump.md"], intent="flow",
                                  gold_steps=["stop pump", "refill reservoir", "restart pump"])
                        for i, q in enumerate(["pump noisy", "BROKEN pump", "third query"])])
    scorer = UtilityScorer(UtilityConfig(enabled=True, max_queries=2), {"pump.md": PROC}, llm)
    records = run_method("one", OneDoc(), qs, RetrievalEvalConfig(), on_result=scorer.plan)
    scorer.flush(records)
    assert records[0]["utility"] == pytest.approx(Verdict(correct_procedure=5, actionable=4, ordered=5,
                                                          safe=3).utility)
    assert records[0]["utility"] == pytest.approx((17 / 4 - 1) / 4)
    assert records[0]["execution"] == pytest.approx(2 / 3)  # step 3 is paraphrased beyond matching
    assert "utility" not in records[1] and "no JSON" in records[1]["judge_error"]
    assert "answer" not in records[2]  # beyond max_queries
    assert scorer.stats["judged"] == 1 and scorer.stats["judge_rejects"] == 1
    agg = breakdown(records)["overall"]
    assert agg["n_utility"] == 1 and agg["n_execution"] == 2
    answer_prompt = next(c for c in llm.calls if "numbered list" in c)
    assert "1. Stop the pump" in answer_prompt and "Pump cavitation" in answer_prompt
    json.dumps(records)  # results stay JSON-serialisable


def test_agent_prompts_show_no_copyable_example_values():
    """Measured: Qwen2.5-Coder-0.5B copied filled-in examples (judge scores 4/3/5/5 in 26 of 26 verdicts,
    writer citations ["2", "3"] in 5 of 12); formats are given with placeholders only."""
    import re

    from sopr_rag.bench import agents
    from sopr_rag.eval.judge import JUDGE_SYSTEM

    assert not re.search(r'"\w+":\s*\d', JUDGE_SYSTEM)
    assert not re.search(r'"cited_steps":\s*\[\s*"\d', agents.WRITER.system)
