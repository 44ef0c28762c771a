"""One small run of the agent workflow on the real embedded SmolLM2 (HF backend; ~25 s on 2 cores)."""

from sopr_rag.bench.cli import load_procedures
from sopr_rag.bench.workflow import BenchBuilder, BenchConfig
from sopr_rag.eval.queries import GoldQuery
from sopr_rag.retrieval.embedder import HashingEmbedder


def test_real_smollm2_run_accounts_for_every_candidate(sop_corpus):
    from runtime.llm import make_backend

    procs = load_procedures(str(sop_corpus))
    one = {d: p for d, p in procs.items() if d.startswith("liquid_cooling/")}
    builder = BenchBuilder(one, make_backend("hf"), BenchConfig(intents=["causal"], max_docs=1),
                           embedder=HashingEmbedder(64))
    records = builder.run()
    s = builder.stats
    assert s.attempted == 1 and s.accepted == len(records)
    assert s.accepted + sum(s.rejects_by_stage.values()) == s.attempted  # accepted or rejected, never lost
    for r in builder.rejects:
        assert r["stage"] in ("writer", "copy", "grounding", "ambiguity", "dedup") and r["reason"]
    for r in records:
        GoldQuery.model_validate(r)
