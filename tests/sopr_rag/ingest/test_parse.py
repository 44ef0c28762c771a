"""Rule-based parsing of the fixture SOPs (Markdown with/without front matter, plain text, tables)."""

from __future__ import annotations

import pytest

from sopr_rag.ingest import IngestReport, ParseError, list_documents, load_procedure, parse_document


def parse(corpus, rel):
    return parse_document(rel, (corpus / rel).read_text(encoding="utf-8"))


def test_front_matter_markdown_fields(sop_corpus):
    p = parse(sop_corpus, "datacenter/ups-on-battery-generator-failed.md")
    assert p.title == "UPS on battery - generator failed to start"
    assert p.metadata["domain"] == "datacenter"
    assert "failed to start" in p.scope
    assert any("UPS_ON_BATTERY" in t for t in p.triggers) and len(p.triggers) == 3
    assert len(p.hazards) == 1 and "batteries are exhausted" in p.hazards[0]
    assert [s.number for s in p.steps] == ["1", "2", "3", "4", "5", "6"]
    assert p.steps[2].condition == "If the generator does not start within 2 minutes"
    assert p.steps[0].condition is None
    assert {"UPS_ON_BATTERY", "GEN-1"} <= set(p.entities)
    assert "battery" in p.outcome.lower() or "generator" in p.outcome.lower()


def test_plain_text_sop_with_labels(sop_corpus):
    p = parse(sop_corpus, "datacenter/crac-high-supply-air-temperature.txt")
    assert p.title == "CRAC Unit High Supply Air Temperature"
    assert p.scope.startswith("computer room air conditioning")
    assert "CRAC_HIGH_SUPPLY_TEMP" in p.triggers[0]
    assert p.hazards == ["rotating fan blades. Lock out the unit before opening panels."]
    assert len(p.steps) == 5 and p.steps[4].condition == "If the unit cannot recover"
    assert p.outcome.startswith("supply air returns below 24 C")


def test_nested_branch_steps_tables_and_bold_labels(sop_corpus):
    p = parse(sop_corpus, "datacenter/pdu-breaker-trip.md")
    assert p.title == "Rack PDU Branch Circuit Breaker Trip"
    assert [s.number for s in p.steps] == ["1", "2", "3", "3.1", "4", "5"]
    assert p.steps[3].condition == "If a single server draws more than 5 A"
    assert "BRANCH_BREAKER_OPEN" in p.triggers[0]
    assert {"Branch current", "Phase imbalance", "clamp meter"} <= set(p.entities)


def test_causes_section_and_cue_sentences(sop_corpus):
    p = parse(sop_corpus, "building_management/ahu-freeze-stat-trip.md")
    assert any("heating valve failed closed" in c for c in p.causes)
    p2 = parse(sop_corpus, "building_management/chiller-high-head-pressure.md")
    assert any("cooling tower fans off" in c for c in p2.causes)


def test_runbook_style_prose_steps_with_code():
    doc = ("---\ntitle: Thing Down\n---\n# ThingDown\n\n## Meaning\nThe alert `ThingDown` fires when all "
           "replicas are gone.\n\n## Diagnosis\nCheck the pods.\n\n```shell\n$ kubectl get pods -n mon\n```\n\n"
           "## Mitigation\nRestart the deployment.\n")
    p = parse_document("thing/ThingDown.md", doc)
    assert p.title == "Thing Down"
    assert [s.text.split(" [")[0] for s in p.steps] == ["Check the pods.", "Restart the deployment."]
    assert "kubectl get" in p.steps[0].text and p.steps[0].section == "Diagnosis"
    assert "ThingDown" in p.entities and "kubectl get" in p.entities


@pytest.mark.parametrize("raw, reason", [("", "empty"), ("   \n\n", "empty"), ("# Only\n## Headings\n", "headings"),
                                         ("abc\x00def", "binary")])
def test_malformed_documents_raise_parse_error(raw, reason):
    with pytest.raises(ParseError, match=reason):
        parse_document("bad.md", raw)


def test_bad_files_are_reported_and_skipped(corpus_copy):
    (corpus_copy / "empty.md").write_text("")
    (corpus_copy / "latin1.txt").write_bytes("Pumpe \xfcberhitzt".encode("latin-1"))
    (corpus_copy / ".hidden").mkdir()
    (corpus_copy / ".hidden" / "x.md").write_text("# x\ntext")
    (corpus_copy / "image.png").write_bytes(b"\x89PNG")
    files = list_documents(corpus_copy)
    assert ".hidden/x.md" not in files and "image.png" not in files
    assert "liquid_cooling/coolant-leak-rack-manifold.md" in files  # ids are POSIX paths relative to the root
    report = IngestReport()
    procs = [load_procedure(d, f, report) for d, f in files.items()]
    assert len([p for p in procs if p]) == 13
    assert set(report.skipped) == {"empty.md", "latin1.txt"}
    assert "UTF-8" in report.skipped["latin1.txt"]


class _FakeLLM:
    def __init__(self, reply):
        self.reply, self.calls = reply, 0

    def generate(self, prompts, params=None):
        from runtime.llm import Generation

        self.calls += 1
        return [Generation(text=self.reply, token_ids=[1, 2], prompt_tokens=50)]


def test_llm_extraction_merges_and_is_cached_per_content_hash(sop_corpus, tmp_path):
    from sopr_rag.ingest.llm_extract import LLMExtractor

    rel = "building_management/chiller-high-head-pressure.md"
    llm = _FakeLLM('Here: {"causes": ["scaled condenser tubes"], "entities": ["CH-1", "condenser"], "x": 1}')
    ex = LLMExtractor(llm, str(tmp_path / "c.jsonl"))
    p = ex.extract(parse(sop_corpus, rel))
    assert "scaled condenser tubes" in p.causes and any("cooling tower" in c for c in p.causes)
    assert p.entities.count("CH-1") == 1 and "condenser" in p.entities
    again = LLMExtractor(_FakeLLM("garbage"), str(tmp_path / "c.jsonl")).extract(parse(sop_corpus, rel))
    assert "scaled condenser tubes" in again.causes  # from the cache, no second LLM call
    assert ex.stats == {"llm_calls": 1, "llm_tokens": 52, "cache_hits": 0}
    bad = LLMExtractor(_FakeLLM("no json here"), None).extract(parse(sop_corpus, rel))
    assert bad.causes == parse(sop_corpus, rel).causes
