"""The component knowledge base: what each system part is called in plain words and what it does.

    kb = KnowledgeBase.load()                   # the packaged YAML files (sopr_rag/knowledge/*.yaml), or a path
    kb.component_of(proc)                       # the entry a runbook is about (title first, then folder), or None
    builder = KnowledgeGlossaryBuilder(kb)      # cards.glossary_source = "knowledge": no LLM at index time
    glossary = builder.build(procs)             # experts.components.Glossary, like the LLM glossary builder's

Why: a symptom report names a component by what it does ("the service that sends out our pages", "the
daemon on each host that starts containers"), words that occur in no runbook. Knowing what a component
does is world knowledge; the paper gets it from a capable LLM at index time. The LLMs this project can run
on CPU (SmolLM2-135M, Qwen2.5-Coder-0.5B) do not have it (README: their glossaries made dev and devsym
worse), so the knowledge ships as data: one YAML entry per component, written from the components' own
documentation, never from evaluation queries. A deployment with a capable model uses the LLM builder
(cards/glossary.py) instead; both produce the same Glossary, so the component graph is the same code.

Entry: {name, match: [identifiers as runbook titles / folders spell them], aliases: [plain phrases],
function: "what it does, in plain words"}. A runbook is about the entry whose `match` identifier occurs
earliest in its title's words (longest on ties), else one matching its folder names; titles are split
into words first ("KubeletPlegDurationHigh" -> kubelet pleg duration high).
"""

from __future__ import annotations

import argparse
import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from sopr_rag.cards.glossary_rules import GENERIC_FOLDERS, words
from sopr_rag.cards.llm import CardStats
from sopr_rag.cards.schema import Component
from sopr_rag.experts.components import Glossary, component_key
from sopr_rag.types import Procedure

PACKAGED = Path(__file__).resolve().parent.parent / "knowledge"
VERSION = "kb-3"  # bump when what build() writes changes: the identity then rebuilds old glossaries


@dataclass(frozen=True)
class Entry:
    name: str
    match: tuple[tuple[str, ...], ...]  # identifiers as word tuples
    aliases: tuple[str, ...]
    function: str

    @property
    def key(self) -> str:
        return component_key(self.name)

    def profile(self) -> str:
        """What the sentence encoder sees: Component.profile, without the LLM-answer length caps of validation."""
        return Component.model_construct(name=self.name, aliases=list(self.aliases), function=self.function).profile()


class KnowledgeBase:
    def __init__(self, entries: list[Entry], digest: str = ""):
        keys = Counter(e.key for e in entries)
        dup = sorted(k for k, n in keys.items() if n > 1)
        if dup:
            raise ValueError(f"component knowledge: duplicate component names {dup}")
        self.entries, self.digest = entries, digest
        self._by_match: dict[str, Entry] = {}  # identifier, words joined ("kubeapi") -> entry
        for e in entries:
            for m in e.match:
                other = self._by_match.setdefault("".join(m), e)
                if other is not e:
                    raise ValueError(f"component knowledge: '{' '.join(m)}' matches both {other.name} and {e.name}")

    @classmethod
    def load(cls, path: str | Path | None = None) -> KnowledgeBase:
        """All *.yaml files of a folder (default: the packaged sopr_rag/knowledge/) or one file."""
        path = Path(path) if path else PACKAGED
        files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
        if not files:
            raise FileNotFoundError(f"no component knowledge (*.yaml) at {path}")
        entries, h = [], hashlib.sha256(VERSION.encode())
        for f in files:
            raw = f.read_bytes()
            h.update(raw)
            data = yaml.safe_load(raw) or {}
            for i, item in enumerate(data.get("components") or []):
                entries.append(_entry(item, f"{f.name}#{i}"))
        return cls(entries, h.hexdigest()[:16])

    def component_of(self, proc: Procedure) -> Entry | None:
        """The entry the runbook is about: earliest match in its title's words (longest first), else its folders."""
        best: tuple[int, int, Entry] | None = None
        title = words(proc.title or PurePosixPath(proc.doc_id).stem)
        for m, e in self._by_match.items():
            pos = _find(title, m)
            if pos >= 0 and (best is None or (pos, -len(m)) < (best[0], best[1])):
                best = (pos, -len(m), e)
        if best:
            return best[2]
        for part in reversed(PurePosixPath(proc.doc_id).parts[:-1]):
            w = tuple(words(part))
            if w and " ".join(w) not in GENERIC_FOLDERS:
                hits = [(len(m), e) for m, e in self._by_match.items() if _find(list(w), m) >= 0]
                return max(hits, key=lambda x: x[0])[1] if hits else None
        return None


def _entry(item: dict, where: str) -> Entry:
    if not isinstance(item, dict) or not item.get("name") or not item.get("function"):
        raise ValueError(f"component knowledge {where}: every entry needs a name and a function")
    if not component_key(str(item["name"])):
        raise ValueError(f"component knowledge {where}: name {item['name']!r} has no content words")
    match = tuple(tuple(words(m)) for m in item.get("match") or [item["name"]])
    if not all(match):
        raise ValueError(f"component knowledge {where} ({item['name']}): an empty match identifier")
    return Entry(str(item["name"]), match, tuple(str(a) for a in item.get("aliases") or []), str(item["function"]))


def _find(seq: list[str], want: str) -> int:
    """First i where the words seq[i:j] joined equal `want` (an identifier's words joined: splitting differs,
    "CPUThrottling" is one word, "CPU Throttling High" three), else -1."""
    for i in range(len(seq)):
        got = ""
        for w in seq[i:]:
            got += w
            if got == want:
                return i
            if not want.startswith(got):
                break
    return -1


class KnowledgeGlossaryBuilder:
    """The GlossaryBuilder interface (identity, build, stats) over the knowledge base: no LLM calls."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        self.stats = CardStats()  # stays zero: nothing is generated

    @property
    def identity(self) -> str:
        return f"{VERSION}|{self.kb.digest}"

    def build(self, procs: dict[str, Procedure], previous: Glossary | None = None) -> Glossary:
        by_entry: dict[str, list[str]] = {}
        docs = {}
        for d, p in sorted(procs.items()):
            e = self.kb.component_of(p)
            docs[d] = {"hash": p.content_hash, "answer": None, "name": e.name if e else None,
                       "by": "knowledge" if e else None}
            if e:
                by_entry.setdefault(e.name, []).append(d)
        entries = []
        for e in self.kb.entries:
            if e.name in by_entry:
                # identifiers: the names runbooks use ("HPA", "etcd"); a query using one names its component
                ids = list(dict.fromkeys([e.name, *(" ".join(m) for m in e.match)]))
                entries.append({"key": e.key, "name": e.name, "aliases": list(e.aliases), "identifiers": ids,
                                "function": e.function, "profile": e.profile(), "docs": by_entry[e.name]})
        return Glossary(entries=entries, docs=docs)


def main(argv: list[str] | None = None) -> int:
    """`python -m sopr_rag.cards.knowledge CORPUS [--kb PATH]`: which component each runbook gets, and coverage."""
    from sopr_rag.ingest.loader import IngestReport, list_documents, load_procedure

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("corpus")
    ap.add_argument("--kb", default=None)
    args = ap.parse_args(argv)
    kb = KnowledgeBase.load(args.kb)
    report = IngestReport()
    procs = [p for d, path in list_documents(args.corpus).items() if (p := load_procedure(d, path, report))]
    missing = 0
    for p in sorted(procs, key=lambda p: p.doc_id):
        e = kb.component_of(p)
        missing += e is None
        print(f"{e.name if e else '-':40s} {p.doc_id}")
    print(f"{len(procs) - missing}/{len(procs)} runbooks have a component; {len(kb.entries)} entries")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
