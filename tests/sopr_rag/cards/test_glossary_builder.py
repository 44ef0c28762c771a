"""Component glossary: the LLM's component name when valid, the folder/title rule when not, one describe
question per distinct component, two batched calls (plus repairs), everything cached by content."""

from __future__ import annotations

import json

from sopr_rag.cards.glossary import GlossaryBuilder, make_glossary_builder
from sopr_rag.cards.glossary_prompts import DESCRIBE_SCHEMA, NAME_SCHEMA, parse_description, parse_name
from sopr_rag.config import CardsConfig
from sopr_rag.ingest import IngestReport, list_documents, load_procedure

AM = "content/runbooks/alertmanager/AlertmanagerFailedToSendAlerts.md"
DS = "content/runbooks/kubernetes/KubeDaemonSetRolloutStuck.md"


def procs_of(corpus):
    report = IngestReport()
    return {d: load_procedure(d, f, report) for d, f in list_documents(corpus).items()}


def builder(tmp_path, llm, **kw) -> GlossaryBuilder:
    return GlossaryBuilder(CardsConfig(glossary=True, cache_path=str(tmp_path / "cache.jsonl"), **kw), llm)


def test_the_switch_and_the_source():
    from sopr_rag.cards.knowledge import KnowledgeGlossaryBuilder

    assert make_glossary_builder(CardsConfig(glossary=False)) is None
    assert isinstance(make_glossary_builder(CardsConfig()), KnowledgeGlossaryBuilder)  # default: no LLM at index time
    assert isinstance(make_glossary_builder(CardsConfig(glossary_source="llm")), GlossaryBuilder)


def test_llm_names_when_valid_rule_names_when_not(tmp_path, runbooks, runbook_llm):
    llm = runbook_llm()
    g = builder(tmp_path, llm).build(procs_of(runbooks))
    assert g.docs[AM] | {"hash": ""} == {"hash": "", "answer": "Alertmanager", "name": "Alertmanager", "by": "llm"}
    # the DaemonSet runbooks got their title back twice (the repair turn names the problem): the rule names them
    assert g.docs[DS]["answer"] is None and (g.docs[DS]["name"], g.docs[DS]["by"]) == ("kube daemon set", "rule")
    repair = [p for p in llm.prompts if len(p) > 2]
    assert len(repair) == 2 and "is the alert or the problem" in repair[0][-1]["content"]
    entries = {e["name"]: e for e in g.entries}
    assert sorted(entries) == ["Alertmanager", "Kubelet", "RAID array", "chronyd", "etcd", "kube daemon set"]
    assert entries["Alertmanager"]["profile"] == ("Alertmanager, notifier: sends alert notifications such as pages "
                                                  "and emails to receivers")
    kubelet = entries["Kubelet"]  # "Kubelet" and "kubelet" are one component
    assert kubelet["docs"] == ["content/runbooks/kubernetes/KubeletDown.md",
                               "content/runbooks/kubernetes/KubeletTooManyPods.md"]
    assert kubelet["aliases"] == ["node agent"] and kubelet["key"] == "kubelet"


def test_one_describe_question_per_component_in_one_call(tmp_path, runbooks, runbook_llm):
    llm = runbook_llm()
    b = builder(tmp_path, llm)
    g = b.build(procs_of(runbooks))
    assert sorted(llm.asked("describe")) == sorted(e["name"] for e in g.entries)  # 6 questions for 10 runbooks
    kubelet_prompt = next(p[1]["content"] for p in llm.prompts if "Component: Kubelet" in p[1]["content"])
    assert "- Kubelet Down\n- Kubelet Too Many Pods" in kubelet_prompt  # its runbook titles as context
    # one generate() per question (+ one for the repair turns), each under its tiny schema, short replies
    assert [(p.schema(), p.max_new_tokens) for p in llm.params] == [(NAME_SCHEMA, 32), (NAME_SCHEMA, 32),
                                                                    (DESCRIBE_SCHEMA, 128)]
    s = b.stats
    assert (s.llm_calls, s.repairs, s.repaired, s.failures) == (10 + 2 + 6, 2, 0, 2)
    assert s.prompt_tokens > 0 and s.completion_tokens > 0


def test_rerun_is_served_by_the_cache(tmp_path, runbooks, runbook_llm):
    first = builder(tmp_path, runbook_llm()).build(procs_of(runbooks))
    llm = runbook_llm()
    again = builder(tmp_path, llm)
    assert again.build(procs_of(runbooks)) == first
    assert llm.prompts == [] and again.stats.llm_calls == 0 and again.stats.cache_hits == 10 + 6
    other_model = builder(tmp_path, runbook_llm(), model="another-model")  # the identity is in every key
    other_model.build(procs_of(runbooks))
    assert other_model.stats.llm_calls == 18 and other_model.identity.startswith("glossary-v2|vllm|another-model|")


def test_unchanged_documents_reuse_the_previous_answers(tmp_path, runbooks, runbook_llm):
    first = builder(tmp_path, runbook_llm()).build(procs_of(runbooks))
    llm = runbook_llm()
    builder(tmp_path / "empty-cache", llm).build(procs_of(runbooks), previous=first)
    assert llm.asked("name") == []  # every runbook's name came from the previous glossary


def test_a_restated_function_is_repaired_or_left_out(tmp_path, runbooks, runbook_llm):
    def restate(comp, repair=False):
        return json.dumps({"function": f"{comp} is {comp}", "aliases": [comp]})

    good = json.dumps({"function": "stores the cluster's state", "aliases": ["service", "cluster store"]})
    fixed = runbook_llm(describe=lambda comp, repair: good if repair else restate(comp))
    g = builder(tmp_path, fixed).build(procs_of(runbooks))
    assert all(e["function"] == "stores the cluster's state" for e in g.entries)
    assert {tuple(e["aliases"]) for e in g.entries} >= {("cluster store",)}  # "service" alone: too generic
    assert "only restates the name" in [p for p in fixed.prompts if len(p) > 2][-1][-1]["content"]
    never = runbook_llm(describe=restate)
    g = builder(tmp_path / "other", never).build(procs_of(runbooks))
    etcd = next(e for e in g.entries if e["name"] == "etcd")
    assert etcd["function"] == "" and etcd["profile"] == "etcd"  # still a component: its name links


def test_parse_name_rejects_titles_problems_placeholders_and_unknown_names():
    title, text = "Node Clock Not Synchronising", {"node", "clock", "time", "chronyd", "synchronising"}
    assert parse_name('{"component": "the chronyd"}', title, text) == ("chronyd", None)
    for reply, why in [('{"component": "Node Clock Not Synchronising"}', "alert or the problem"),
                       ('{"component": "clock not synchronising"}', "alert or the problem"),
                       ('{"component": "<name>"}', "not a program or a device"),
                       ('{"component": "Runbook"}', "not a program or a device"),
                       ('{"component": "nginx"}', "not named in the runbook"),
                       ('{"component": "the node time sync service daemon"}', "1 to 4 words"),
                       ("chronyd", "no JSON object")]:
        name, err = parse_name(reply, title, text)
        assert name is None and why in err, (reply, err)


def test_parse_description_keeps_useful_aliases_only():
    desc, err = parse_description(json.dumps({"function": "sends alert notifications to receivers",
                                              "aliases": ["Alertmanager", "notifier", "service", "<another name>"]}),
                                  "Alertmanager", ["Alertmanager Failed To Send Alerts"])
    assert err is None and desc == {"function": "sends alert notifications to receivers", "aliases": ["notifier"]}
    for function in ["<what it does>", "A software or hardware component that manages the node",
                     "stores " + "the state of every object in the cluster " * 3]:  # a placeholder, parroted, cut off
        assert parse_description(json.dumps({"function": function, "aliases": []}), "etcd", [])[0] is None
