"""`python -m sopr_rag <verb>` through main(): the verb list, index|search|ask, the one method registry."""

from __future__ import annotations

import json
import shutil

import pytest

from sopr_rag.__main__ import VERBS, main


def test_index_command_builds_then_updates(tmp_path, sop_corpus, capsys):
    corpus = tmp_path / "c"
    corpus.mkdir()
    for rel in ("datacenter/pdu-breaker-trip.md", "building_management/fire-alarm-elevator-recall.txt"):
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sop_corpus / rel, corpus / rel)
    assert main(["index", str(corpus), "--out", str(tmp_path / "idx")]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 2
    (corpus / "datacenter/pdu-breaker-trip.md").unlink()
    assert main(["index", str(corpus), "--out", str(tmp_path / "idx")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["added"], out["removed"]) == (0, 1)


def test_search_writes_the_result_schema_and_skips_bad_lines(minilm_index, tmp_path, capsys):
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "a", "query": "GEN-1 failed to start", "gold_docs": []}\nnot json\n'
                       '{"query": "no id"}\n{"id": 7, "query": "freeze stat trip on the AHU"}\n')
    out = tmp_path / "r.jsonl"
    rc = main(["search", "--index", str(minilm_index.index_dir), "--queries", str(queries), "--top-k", "4",
               "--out", str(out)])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["queries"] == 2 and summary["skipped_lines"] == 2
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in lines] == ["a", 7]
    for r in lines:
        assert set(r) == {"id", "ranked_docs", "scores", "expert_weights", "steps"}
        assert len(r["ranked_docs"]) == len(r["scores"]) == 4
    assert lines[1]["ranked_docs"][0] == "building_management/ahu-freeze-stat-trip.md"


def test_search_dispatches_baselines(minilm_index, tmp_path, capsys):
    pytest.importorskip("sopr_rag.baselines")
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "a", "query": "freeze stat trip on the AHU"}\n')
    out = tmp_path / "r.jsonl"
    assert main(["search", "--index", str(minilm_index.index_dir), "--queries", str(queries), "--out", str(out),
                 "--method", "bm25"]) == 0
    assert json.loads(out.read_text())["ranked_docs"][0] == "building_management/ahu-freeze-stat-trip.md"


def test_ask_prints_citations(minilm_index, capsys):
    rc = main(["ask", "--index", str(minilm_index.index_dir), "pump is cavitating after the filter swap, what next?"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "liquid_cooling/cdu-pump-cavitation-after-filter-change.md#" in text


def test_bad_config_override_is_a_clear_error(minilm_index, capsys):
    rc = main(["ask", "--index", str(minilm_index.index_dir), "x", "fusion.nope=1"])
    assert rc == 2 and "unknown key 'fusion.nope'" in capsys.readouterr().err


def test_help_lists_every_verb(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for verb in ("index", "search", "ask", "serve", "evaluate", "rejudge", "build-bench", "perf", "demo"):
        assert f"  {verb} " in out, verb
    assert {v.name for v in VERBS} == {"index", "search", "ask", "serve", "evaluate", "rejudge", "build-bench", "perf",
                                       "demo"}
    assert main(["nope"]) == 2 and "unknown verb 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("verb", ["index", "search", "ask", "serve", "evaluate", "perf", "demo"])
def test_verb_help_lists_its_flags_and_the_config_keys(verb, capsys):
    with pytest.raises(SystemExit) as e:
        main([verb, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"python -m sopr_rag {verb}" in out and "--config" in out and "key=value" in out
    assert "fusion.trust_k" in out and "gate.mode" in out  # every SopragConfig key, with its default


def test_spec_verbs_list_their_spec_keys(capsys):
    for verb, key in (("evaluate", "eval.methods"), ("build-bench", "bench.max_docs"), ("rejudge", "utility.backend")):
        with pytest.raises(SystemExit):
            main([verb, "--help"])
        out = capsys.readouterr().out
        assert "--spec" in out and key in out, verb


def test_eval_spec_and_soprag_config_share_no_top_level_key():
    """`evaluate` routes a key=value override by its first key: the two configs must not share one."""
    from sopr_rag.cli import split_overrides
    from sopr_rag.config import SopragConfig
    from sopr_rag.eval.cli import EvalSpec

    assert not set(EvalSpec.model_fields) & set(SopragConfig.model_fields)
    assert split_overrides(["eval.top_k=5", "fusion.trust_k=0", "out=r.json"], EvalSpec) == (
        ["fusion.trust_k=0"], ["eval.top_k=5", "out=r.json"])


def test_one_method_registry_behind_cli_api_and_evaluation(tmp_path, capsys):
    """CLI `search --method`, `evaluate --methods` and the evaluation library refuse an unknown method with the
    registry's message; the HTTP API accepts exactly the registry's methods."""
    import types

    from fastapi.testclient import TestClient

    import sopr_rag.api
    import sopr_rag.baselines
    import sopr_rag.cli
    import sopr_rag.eval.run
    from sopr_rag.eval.harness import RetrievalEvalConfig
    from sopr_rag.retrievers import METHODS, UnknownMethodError, check_method, make_retriever

    with pytest.raises(UnknownMethodError) as err:
        check_method("nope")
    message = str(err.value)
    assert "unknown method 'nope'" in message and "bm25" in message and "soprag[<ablation>]" in message
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "a", "query": "generator will not start"}\n')
    assert main(["search", "--index", str(tmp_path / "idx"), "--queries", str(queries), "--out",
                 str(tmp_path / "r.jsonl"), "--method", "nope"]) == 2
    assert message in capsys.readouterr().err
    assert main(["evaluate", "--index", str(tmp_path / "idx"), "--queries", str(queries), "--methods", "soprag,nope",
                 "--out", str(tmp_path / "e.json")]) == 2
    assert message in capsys.readouterr().err
    index = types.SimpleNamespace(docs={}, procedures={}, index_dir=tmp_path / "idx")
    with pytest.raises(UnknownMethodError, match="unknown method 'nope'"):
        sopr_rag.eval.run.evaluate(index, [], RetrievalEvalConfig(methods=["nope"]))
    assert RetrievalEvalConfig().methods == list(METHODS)
    # the API and the evaluation call the registry's factory; no second factory is left anywhere
    assert sopr_rag.api.make_retriever is make_retriever and sopr_rag.eval.run.make_retriever is make_retriever
    assert not hasattr(sopr_rag.cli, "make_retriever") and not hasattr(sopr_rag.baselines, "get_retriever")
    assert not hasattr(sopr_rag.eval.run, "make_method")
    client = TestClient(sopr_rag.api.create_app(tmp_path / "idx", index=index))
    schema = client.get("/openapi.json").json()["components"]["schemas"]["SearchRequest"]["properties"]["method"]
    assert schema["enum"] == list(METHODS)
    r = client.post("/search", json={"query": "generator will not start", "method": "nope"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "method"]
