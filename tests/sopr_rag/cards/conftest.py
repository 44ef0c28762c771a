"""A scripted LLM backend for card tests: replies chosen per runbook title, every prompt recorded."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

import pytest

from runtime.llm import Generation, LLMBackend, SamplingParams


def card_json(name: str, aliases=(), function: str = "", symptoms=("it stopped working",)) -> str:
    return json.dumps({"components": [{"name": name, "aliases": list(aliases), "function": function}],
                       "symptoms": list(symptoms), "conditions": [], "causes": ["a fault"], "actions": ["fix it"]})


class StubLLM(LLMBackend):
    """generate(): reply(title, is_repair) per prompt; counts calls and keeps every prompt."""

    name = "stub"

    def __init__(self, reply: Callable[[str, bool], str]):
        self.reply = reply
        self.prompts: list[list[dict]] = []
        self.params: list[SamplingParams | None] = []  # one per generate() call

    def generate(self, prompts: Sequence, params: SamplingParams | None = None) -> list[Generation]:
        out = []
        self.params.append(params)
        for p in prompts:
            self.prompts.append(p)
            title = re.search(r"Title: (.*)", p[1]["content"]).group(1)
            text = self.reply(title, len(p) > 2)
            out.append(Generation(text=text, token_ids=list(range(len(text.split()))), finish_reason="stop",
                                  prompt_tokens=len(p[1]["content"].split())))
        return out

    def token_logprobs(self, texts):
        raise NotImplementedError

    def titles(self) -> list[str]:
        return [re.search(r"Title: (.*)", p[1]["content"]).group(1) for p in self.prompts]


@pytest.fixture()
def make_card():
    """card_json(name, aliases, function, symptoms) -> a valid card reply."""
    return card_json


@pytest.fixture()
def stub_llm():
    """Factory: stub_llm(reply) -> StubLLM; default reply = a valid card naming the title's first word."""
    def make(reply: Callable[[str, bool], str] | None = None) -> StubLLM:
        return StubLLM(reply or (lambda title, repair: card_json(title.split()[0])))
    return make


class GlossaryLLM(LLMBackend):
    """Answers the glossary's questions: name(title, is_repair) for a runbook, describe(component, is_repair)."""

    name = "fake-glossary"

    def __init__(self, name: Callable[[str, bool], str] | None = None, describe: Callable[[str, bool], str] | None = None):
        self.name_reply = name or (lambda title, repair: json.dumps({"component": title.split()[0]}))
        self.describe_reply = describe or (lambda comp, repair: json.dumps(
            {"function": f"keeps the {comp.lower()} equipment working", "aliases": [f"{comp} unit"]}))
        self.prompts: list[list[dict]] = []
        self.params: list[SamplingParams | None] = []

    def generate(self, prompts: Sequence, params: SamplingParams | None = None) -> list[Generation]:
        self.params.append(params)
        out = []
        for p in prompts:
            self.prompts.append(p)
            user, repair = p[1]["content"], len(p) > 2
            comp = re.search(r"^Component: (.*)$", user, re.M)
            text = (self.describe_reply(comp.group(1), repair) if comp
                    else self.name_reply(re.search(r"Title: (.*)", user).group(1), repair))
            out.append(Generation(text=text, token_ids=[1] * len(text.split()), finish_reason="stop",
                                  prompt_tokens=len(user.split())))
        return out

    def token_logprobs(self, texts):
        raise NotImplementedError

    def asked(self, question: str) -> list[str]:
        """The runbook titles ("name") or component names ("describe") asked about, in order, repairs included."""
        pattern = r"^Component: (.*)$" if question == "describe" else r"Title: (.*)"
        return [m.group(1) for p in self.prompts if (m := re.search(pattern, p[1]["content"], re.M))]


@pytest.fixture()
def glossary_llm():
    """Factory: glossary_llm(name=..., describe=...) -> GlossaryLLM."""
    return GlossaryLLM


RUNBOOKS = {  # path -> (title, what the runbook says): a small corpus filed by component, like the real runbooks
    "content/runbooks/alertmanager/AlertmanagerFailedToSendAlerts.md": (
        "Alertmanager Failed To Send Alerts", "Alertmanager failed to send notifications to an integration."),
    "content/runbooks/alertmanager/AlertmanagerClusterDown.md": (
        "Alertmanager Cluster Down", "Half or more of the Alertmanager instances are down."),
    "content/runbooks/etcd/etcdNoLeader.md": ("etcdNoLeader", "The etcd member has no leader."),
    "content/runbooks/etcd/etcdMembersDown.md": ("etcdMembersDown", "One or more etcd members are down."),
    "content/runbooks/kubernetes/KubeletDown.md": ("Kubelet Down", "The kubelet has disappeared from discovery."),
    "content/runbooks/kubernetes/KubeletTooManyPods.md": (
        "Kubelet Too Many Pods", "The kubelet runs at its pod capacity."),
    "content/runbooks/kubernetes/KubeDaemonSetRolloutStuck.md": (
        "Kube Daemon Set Rollout Stuck", "The DaemonSet rollout is stuck."),
    "content/runbooks/kubernetes/KubeDaemonSetMisScheduled.md": (
        "Kube Daemon Set Mis Scheduled", "DaemonSet pods run where they should not."),
    "content/runbooks/node/NodeClockNotSynchronising.md": (
        "Node Clock Not Synchronising", "Time is not synchronising; check that chronyd is running."),
    "content/runbooks/node/NodeRAIDDegraded.md": ("Node RAID Degraded", "The RAID array is degraded: a disk failed."),
}


def write_runbooks(root, runbooks=RUNBOOKS):
    for path, (title, meaning) in runbooks.items():
        f = root / path
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f"---\ntitle: {title}\n---\n\n# {title}\n\n## Meaning\n\n{meaning}\n\n## Mitigation\n\n"
                     "1. Check the logs of the affected pods.\n2. Restart the failing instance.\n")
    return root


@pytest.fixture()
def runbooks(tmp_path):
    """A 10-runbook corpus in five component folders (alertmanager, etcd, kubernetes, node)."""
    return write_runbooks(tmp_path / "runbooks")


NAMES = {"Alertmanager Failed To Send Alerts": "Alertmanager", "Alertmanager Cluster Down": "Alertmanager",
         "etcdNoLeader": "etcd", "etcdMembersDown": "etcd", "Kubelet Down": "Kubelet", "Kubelet Too Many Pods": "kubelet",
         "Node Clock Not Synchronising": "chronyd", "Node RAID Degraded": "RAID array"}  # DaemonSet: the title (invalid)
DESCRIPTIONS = {
    "alertmanager": ("sends alert notifications such as pages and emails to receivers", ["notifier"]),
    "etcd": ("the key-value database that stores the cluster's state", ["control-plane datastore"]),
    "kubelet": ("agent on every machine that starts and watches containers", ["node agent"]),
    "kube daemon set": ("runs one copy of a workload on every machine", ["DaemonSet"]),
    "chronyd": ("keeps the machine's time of day in step with time servers", ["time daemon"]),
    "raid array": ("mirrors disks so that one failed disk loses no data", ["disk mirror"])}


@pytest.fixture()
def runbook_llm():
    """Factory: a GlossaryLLM that knows the runbooks corpus (the DaemonSet runbooks get the title back)."""
    def make(**kw) -> GlossaryLLM:
        name = lambda title, repair: json.dumps({"component": NAMES.get(title, title)})  # noqa: E731
        describe = lambda comp, repair: json.dumps(dict(zip(("function", "aliases"), DESCRIPTIONS[comp.lower()])))  # noqa: E731
        return GlossaryLLM(**{"name": name, "describe": describe, **kw})
    return make
