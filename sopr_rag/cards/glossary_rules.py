"""Component names without the LLM, and joining near-duplicate names across the corpus (glossary.py).

    folder_names("alerts/cluster-etcd-operator/etcdNoLeader.md") -> ["cluster etcd operator", "etcd operator", "etcd"]
    rule_names(procs)   doc id -> the rule's component name: the fallback when the LLM's answer is unusable
    merge_names(names)  one group per component: "kube-apiserver" and "API server", "Kubelet" and "kubelet"

The rule, in order: (a) the folder, when the title starts with one of its names (runbooks are filed under
the component their alerts watch: alertmanager/AlertmanagerFailedReload); (b) the title's leading words
shared with another title of the folder (node/NodeRAIDDegraded + NodeRAIDDiskFailure -> "node raid"; a
single word shared by most of the folder is the folder's family prefix, "Kube", not a component);
(c) the folder's core name ("cluster-" and then "-operator" dropped: OpenShift's cluster-X-operator runs X).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from sopr_rag.cards.schema import STOPWORDS
from sopr_rag.experts.components import component_key
from sopr_rag.retrieval.identifiers import humanize
from sopr_rag.types import Procedure

GENERIC_FOLDERS = frozenset({"alerts", "alert", "runbooks", "runbook", "content", "docs", "doc", "general",
                             "common", "misc", "sops", "sop", "procedures", "helpers", "other"})
# Words that describe the trouble, not the part: a title's component words stop before them, and an
# LLM answer containing one names the problem ("clock not synchronising").
CONDITION_WORDS = frozenset("high low no not too many failed failing failure fail fails down up error errors slow "
                            "missing insufficient excessive degraded unhealthy almost out full stuck lost over under "
                            "exceeded exceeding skew flapping crashlooping unreachable unavailable warning critical".split())
# Words that do not tell two components apart when merging names ("kube-apiserver" = "API server").
PLATFORM_WORDS = frozenset({"kube", "kubernetes", "k8s", "openshift", "cluster", "the"})
ROLE_SUFFIXES = ("servers", "server", "services", "service", "daemon", "process", "instances", "instance",
                 "pods", "pod", "members", "member", "database")


def words(text: str) -> list[str]:
    """Lower-case words with identifiers split: 'KubeAPIDown' -> ['kube', 'api', 'down']."""
    return re.findall(r"[a-z0-9]+", humanize(text.replace("_", "-")).lower())


def folder_names(doc_id: str) -> list[str]:
    """Names the nearest non-generic folder gives the component, most specific first ([]: none)."""
    folders = [w for part in reversed(PurePosixPath(doc_id).parts[:-1]) if (w := words(part))]
    w = next((f for f in folders if " ".join(f) not in GENERIC_FOLDERS), None)
    if not w:
        return []
    out = [w]
    if w[0] == "cluster" and len(w) > 1:
        w = w[1:]
        out.append(w)
        if w[-1] == "operator" and len(w) > 1:
            out.append(w[:-1])
    return list(dict.fromkeys(" ".join(x) for x in out))


def title_words(title: str) -> list[str]:
    """The title's leading component words: up to the first condition or stop word."""
    out = []
    for w in words(title):
        if w in CONDITION_WORDS or w in STOPWORDS:
            break
        out.append(w)
    return out


def _shared_prefix(mine: list[str], others: list[list[str]], folder_size: int) -> str | None:
    """The longest leading run of `mine` that another title of the folder starts with."""
    for n in range(len(mine), 0, -1):
        share = sum(o[:n] == mine[:n] for o in others)
        if share and not (n == 1 and share + 1 > folder_size / 2):
            return " ".join(mine[:n])
    return None


def rule_names(procs: Iterable[Procedure]) -> dict[str, str]:
    """doc id -> the rule's component name; documents the rule cannot name are absent."""
    by_folder: dict[str, list[Procedure]] = defaultdict(list)
    for p in procs:
        by_folder[str(PurePosixPath(p.doc_id).parent)].append(p)
    out: dict[str, str] = {}
    for group in by_folder.values():
        heads = {p.doc_id: title_words(p.title) for p in group}
        for p in group:
            folder = folder_names(p.doc_id)
            full = words(p.title)
            starts = [f for f in folder if full[:len(f.split())] == f.split()]
            others = [h for d, h in heads.items() if d != p.doc_id]
            name = (starts[0] if starts else _shared_prefix(heads[p.doc_id], others, len(group))
                    or (folder[-1] if folder else None))
            if name:
                out[p.doc_id] = name
    return out


def merge_signature(name: str) -> str:
    """What near-duplicate names share: platform words and a role suffix dropped, spaces and plural ignored."""
    w = words(name)
    s = "".join([x for x in w if x not in PLATFORM_WORDS] or w)
    for role in ROLE_SUFFIXES:
        if s.endswith(role) and len(s) > len(role):
            s = s[:-len(role)]
            break
    return s[:-1] if len(s) > 3 and s.endswith("s") and not s.endswith("ss") else s


@dataclass
class ComponentGroup:
    name: str  # the spelling most documents use
    key: str  # experts.components.component_key(name)
    docs: list[str] = field(default_factory=list)  # sorted doc ids
    variants: list[str] = field(default_factory=list)  # the other spellings: aliases for free


def merge_names(names: dict[str, str]) -> list[ComponentGroup]:
    """Join the documents' names into components (same signature, or same component key), sorted by key."""
    by_sig: dict[str, list[str]] = defaultdict(list)
    for doc_id, name in sorted(names.items()):
        by_sig[merge_signature(name)].append(doc_id)
    by_key: dict[str, list[str]] = defaultdict(list)
    for docs in by_sig.values():
        by_key[component_key(_canonical([names[d] for d in docs]))].extend(docs)
    groups = []
    for key, docs in sorted(by_key.items()):
        spellings = [names[d] for d in docs]
        name = _canonical(spellings)
        variants = sorted({s.lower() for s in spellings} - {name.lower()})
        if key:
            groups.append(ComponentGroup(name, key, sorted(docs), variants))
    return groups


def _canonical(spellings: list[str]) -> str:
    """Most documents' spelling; ties: fewer words, then alphabetical (deterministic for any doc order)."""
    counts = Counter(spellings)
    return min(counts, key=lambda s: (-counts[s], len(words(s)), s.lower(), s))
