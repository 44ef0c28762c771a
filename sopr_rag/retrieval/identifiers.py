"""Identifier splitting: `etcdNoLeader`, `kube_pod_status`, `kubelet.service` -> their words.

One owner for the rule: BM25 tokenisation (retrieval.lexical) indexes the parts next to the whole
identifier; texts a sentence encoder reads (cards, expert nodes) get the spaced words instead, because
MiniLM's word pieces of `etcdNoLeader` share nothing with "etcd has no leader".
"""

from __future__ import annotations

import re

# "KubeAPIDown" -> Kube, API, Down; "etcdNoLeader" -> etcd, No, Leader; "NodeRAIDDegraded" -> Node, RAID, Degraded
CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
SEPARATORS = re.compile(r"[_.\-]")
# A word with an inner capital after a lower-case letter or digit, or with an inner _ . - between letters.
_IDENTIFIER = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:(?<=[a-z0-9])[A-Z][A-Za-z0-9]*|[_.\-][A-Za-z0-9]+)+\b")


def split_parts(word: str) -> list[str]:
    """The words of one identifier, in order ('KubeAPIDown' -> ['Kube', 'API', 'Down'])."""
    return [w for part in SEPARATORS.split(word) if part for w in CAMEL.findall(part)]


def humanize(text: str) -> str:
    """Text with every compound identifier replaced by its spaced words; plain words are untouched."""
    def repl(m: re.Match) -> str:
        parts = split_parts(m.group(0))
        return " ".join(parts) if len(parts) > 1 else m.group(0)

    return _IDENTIFIER.sub(repl, text)
