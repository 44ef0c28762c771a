import math

import pytest

from sopr_rag.eval.metrics import (
    execution_score,
    ndcg_at,
    ordered_matches,
    reciprocal_rank,
    retrieval_metrics,
    step_metrics,
)


def test_retrieval_metrics_by_hand():
    m = retrieval_metrics(["x", "g1", "y", "g2"], ["g1", "g2"])
    assert (m["hit@1"], m["hit@3"], m["recall@3"], m["recall@5"]) == (0.0, 1.0, 0.5, 1.0)
    assert m["mrr"] == 0.5
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    assert m["ndcg@10"] == pytest.approx(dcg / (1 + 1 / math.log2(3)))
    assert reciprocal_rank(["a", "b"], {"c"}) == 0.0
    assert ndcg_at(["g"], {"g"}) == 1.0


def test_ordered_step_matching():
    doc = ["Check the generator status on the BMS", "Transfer the load with the ATS",
           "Call the shift lead and log the event"]
    gold = ["check generator status", "transfer load via ATS"]
    assert ordered_matches(gold, doc) == 2
    assert ordered_matches(list(reversed(gold)), doc) == 1  # wrong order: only one can be kept
    assert step_metrics(gold, doc) == {"step_acc": 1.0, "step_recall_ordered": 1.0}
    assert step_metrics(gold, doc[1:]) == {"step_acc": 0.0, "step_recall_ordered": 0.5}
    # two gold actions written in one document step still count, in order
    assert ordered_matches(["check generator status", "call shift lead"],
                           ["Check the generator status, then call the shift lead"]) == 2
    assert step_metrics([], doc) == {}


def test_execution_score_reads_free_text_answers():
    gold = ["check generator status", "transfer load via ATS", "log the event"]
    answer = "1. First check the generator status.\n2. Then transfer the load via the ATS.\nDone."
    assert execution_score(gold, answer) == pytest.approx(2 / 3)
    assert execution_score(gold, "Log the event. Transfer load via ATS. Check generator status.") == \
        pytest.approx(1 / 3)
    assert execution_score(gold, "") == 0.0
