"""The agent workflow with a scripted, deterministic LLM: every stage accepts and rejects for a reason."""

import json
import re

import pytest

from sopr_rag.bench.cli import load_procedures
from sopr_rag.bench.scripted import ScriptedBackend
from sopr_rag.bench.workflow import BenchBuilder, BenchConfig, write_outputs
from sopr_rag.eval.queries import load_queries
from sopr_rag.retrieval.embedder import HashingEmbedder


def writer(prompt: str) -> str:
    title = re.search(r"Procedure: (.*)", prompt).group(1)
    intent = re.search(r"Write one (\w+) question", prompt).group(1)
    if "Refrigerant" in title or "Chiller" in title:
        return "I cannot help with that."  # not JSON -> writer reject
    if "Fuel" in title and intent == "flow":
        return '{"question": "what do I do about the fuel spill near the aircraft?", "cited_steps": ["99"]}'
    if "Fuel" in title and intent == "causal":  # verbatim copy of the document -> copy reject
        second = re.search(r"\n2\. (.*)", prompt).group(1)
        return json.dumps({"question": second, "cited_steps": ["2"]})
    slug = title.lower().replace(" ", "_")  # one "word": the copy check must not fire on the title
    return json.dumps({"question": f"operator asks a {intent} thing about {slug} right now",
                       "cited_steps": ["2", "1"], "difficulty": "hard"})


def ambiguity(prompt: str) -> str:
    q = re.search(r"Question: (.*)", prompt).group(1)
    for letter, title in re.findall(r"^([A-Z])\. (.*?):", prompt, re.M):
        if title.lower().replace(" ", "_") in q:
            return json.dumps({"answer": letter, "reason": "title match"})
    return '{"answer": "several"}'


def grounding(prompt: str) -> str:
    return '{"grounded": false, "reason": "steps do not say"}' if "entity thing" in prompt else '{"grounded": true}'


def dedup(prompt: str) -> str:
    new = re.search(r"New question: (.*)", prompt).group(1)
    earlier = re.findall(r"^\[(.*?)\] (.*)$", prompt, re.M)
    for qid, q in earlier:
        if q.split(" about ")[1] == new.split(" about ")[1]:
            return json.dumps({"duplicate": True, "duplicate_of": qid})
    return '{"duplicate": false}'


@pytest.fixture(scope="module")
def procs(sop_corpus):
    return load_procedures(str(sop_corpus))


def make_llm():
    return ScriptedBackend([("Write one", writer), ("Do these steps answer", grounding),
                            ("Which procedure answers", ambiguity), ("Is the new question a duplicate", dedup)])


def test_workflow_stages_and_outputs(procs, tmp_path):
    builder = BenchBuilder(procs, make_llm(), BenchConfig(intents=["causal", "flow", "entity"]),
                           embedder=HashingEmbedder(64))
    records = builder.run()
    stats = write_outputs(records, builder, tmp_path / "bench.jsonl")
    stages = builder.stats.rejects_by_stage
    n_docs = sum(1 for p in procs.values() if p.steps)
    assert stats["attempted"] == 3 * n_docs
    # writer: the chiller SOP (3 intents, no JSON) + fuel/flow (cites a missing step); copy: fuel/causal;
    # grounding: every other entity question; dedup: per doc, flow repeats the causal question's topic
    assert stages == {"writer": 4, "copy": 1, "grounding": n_docs - 1, "dedup": n_docs - 2}
    assert stats["accepted"] == len(records) == stats["attempted"] - sum(stages.values())
    reasons = {r["stage"]: r["reason"] for r in builder.rejects}
    assert "not in the procedure" in reasons["writer"] or "no JSON" in reasons["writer"]
    assert reasons["dedup"].startswith("duplicate of bench-")
    # accepted questions: evaluation schema, gold steps in document order, gold doc unique per the checker
    loaded = load_queries(tmp_path / "bench.jsonl")
    assert len(loaded.queries) == len(records) and not loaded.skipped
    for q in loaded.queries:
        proc = procs[q.gold_docs[0]]
        assert q.gold_steps == [proc.steps[0].text, proc.steps[1].text]
        assert q.intent in ("causal", "flow") and q.difficulty == "hard"
    rejects = [json.loads(line) for line in (tmp_path / "bench.rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == sum(stages.values())
    assert json.loads((tmp_path / "bench.stats.json").read_text())["yield"] == pytest.approx(stats["yield"])


def test_ambiguity_checker_sees_near_twins(procs):
    builder = BenchBuilder(procs, make_llm(), BenchConfig(twins=2), embedder=HashingEmbedder(64))
    from sopr_rag.bench.workflow import Candidate

    twins = builder.twins(Candidate("liquid_cooling/cdu-pump-cavitation-low-reservoir.md", "causal",
                                    question="CDU pump cavitation, noisy pump, low flow"))
    assert "liquid_cooling/cdu-pump-cavitation-after-filter-change.md" in twins and len(twins) == 2


def test_bad_config_is_a_clear_error(procs):
    with pytest.raises(ValueError, match="unknown intents"):
        BenchBuilder(procs, make_llm(), BenchConfig(intents=["poetry"]), embedder=HashingEmbedder(64))
