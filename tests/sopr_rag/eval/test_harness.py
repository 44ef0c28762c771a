import json

import pytest

from sopr_rag.eval.harness import RetrievalEvalConfig, breakdown, run_method
from sopr_rag.eval.queries import GoldQuery, QuerySet
from sopr_rag.eval.report import to_markdown
from sopr_rag.types import SearchHit, SearchResult


class CannedRetriever:
    name = "canned"

    def __init__(self, rankings, steps=None):
        self.rankings, self.steps = rankings, steps or []

    def search(self, query, top_k=10):
        hits = [SearchHit(d, 1.0 / (i + 1), steps=[{"number": str(n), "text": t} for n, t in enumerate(self.steps)]
                          if i == 0 else []) for i, d in enumerate(self.rankings[query][:top_k])]
        return SearchResult(query=query, hits=hits)


QS = QuerySet("toy", [
    GoldQuery(id=1, query="a", gold_docs=["A"], intent="entity", difficulty="easy"),
    GoldQuery(id=2, query="b", gold_docs=["B"], intent="flow", difficulty="hard",
              gold_steps=["open valve", "start pump"]),
    GoldQuery(id=3, query="c", gold_docs=["C"], intent="flow", difficulty="hard", gold_steps=["vent the line"]),
])


def test_aggregates_match_hand_computation():
    r = CannedRetriever({"a": ["A", "X"], "b": ["X", "Y", "B"], "c": ["Z"]}, steps=["Open the valve", "Start pump"])
    records = run_method("canned", r, QS, RetrievalEvalConfig())
    agg = breakdown(records)
    assert agg["overall"]["mrr"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert agg["overall"]["hit@1"] == pytest.approx(1 / 3)
    assert agg["by_intent"]["flow"]["mrr"] == pytest.approx((1 / 3) / 2)
    assert agg["by_difficulty"]["hard"]["n"] == 2
    # step accuracy only on flow queries: q2's steps are present in order, q3's are not
    assert agg["overall"]["step_acc"] == 0.5 and agg["overall"]["n_step_acc"] == 2
    assert "step_acc" not in records[0]


def test_markdown_report_lists_every_method_and_group():
    r = CannedRetriever({"a": ["A"], "b": ["B"], "c": ["C"]})
    m = breakdown(run_method("canned", r, QS, RetrievalEvalConfig()))
    md = to_markdown({"title": "t", "index": "i", "n_docs": 3, "query_sets": {
        "toy": {"n": 3, "skipped": 0, "methods": {"canned": m, "other": m}}}})
    assert "| canned | 1.000 |" in md and "| other |" in md
    assert "MRR by intent" in md and "Hit@1 by difficulty" in md and "entity=1, flow=2" in md


def test_evaluate_cli_end_to_end(minilm_index, sop_queries, tmp_path):
    """The real pipeline: SOPRAG + baselines + ablations on the fixture index through the CLI."""
    from sopr_rag.__main__ import main

    qfile = tmp_path / "q.jsonl"
    qfile.write_text("\n".join(json.dumps(q) for q in sop_queries) + "\n{broken\n", encoding="utf-8")
    out = tmp_path / "res.json"
    rc = main(["evaluate", "--index", str(minilm_index.index_dir), "--queries", str(qfile),
               "--methods", "soprag,bm25,hybrid,graph", "--ablations", "uniform-gate,-flow,oracle-intent",
               "--out", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    qs = res["query_sets"]["q"]
    assert qs["n"] == len(sop_queries) and qs["skipped"] == 1
    assert list(qs["methods"]) == ["soprag", "bm25", "hybrid", "graph", "soprag[uniform-gate]", "soprag[-flow]",
                                   "soprag[oracle-intent]"]
    for m in qs["methods"].values():
        assert len(m["per_query"]) == len(sop_queries) and 0 <= m["overall"]["mrr"] <= 1
    assert qs["methods"]["bm25"]["overall"]["hit@10"] > 0.8
    assert out.with_suffix(".md").read_text().count("| soprag") >= 4
    assert (minilm_index.index_dir / "baselines" / "dense" / "manifest.json").is_file()
    assert main(["evaluate", "--index", str(tmp_path / "nope"), "--queries", str(qfile)]) == 2


def test_evidence_ablations_change_exactly_their_setting(minilm_index):
    from sopr_rag.config import SopragConfig
    from sopr_rag.eval.ablations import make_ablation

    base = SopragConfig()
    changed = {"no-trust": ("trust_k", 0), "gated-experts": ("gated_votes", 1.0), "first-design": ("method", "weighted")}
    for name, (key, value) in changed.items():
        f = make_ablation(name, minilm_index, base, {}).cfg.fusion
        assert getattr(f, key) == value and f.model_copy(update={key: getattr(base.fusion, key)}) == base.fusion, name
    assert make_ablation("no-card-dense", minilm_index, base, {}).cfg.fusion.voters["card_dense"] == 0.0
    no_causal = make_ablation("-causal", minilm_index, base, {})
    assert no_causal.cfg.fusion.expert_votes["causal"] == 0.0
    hits = no_causal.search("coolant leak at the rack manifold", 5).hits
    assert all(h.score == h.details["evidence"] for h in hits)  # no expert votes left: score = evidence
