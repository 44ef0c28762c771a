"""Split a Procedure into passages that keep their heading path (so a chunk says where it came from).

A passage is one heading's body (`Title > Section > Subsection`), split into overlapping word windows
when long. Code fences are kept intact inside a passage: their headings-looking `#` lines are comments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sopr_rag.types import Procedure

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Passage:
    passage_id: str  # "<doc_id>#<n>"
    doc_id: str
    heading: str  # "Title > Section"
    text: str  # heading path + body: what gets indexed

    @property
    def body(self) -> str:
        return self.text.split("\n", 1)[1] if "\n" in self.text else ""


def strip_front_matter(text: str) -> str:
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            return text[text.find("\n", end + 1) + 1:] if text.find("\n", end + 1) != -1 else ""
    return text


def _sections(text: str, title: str) -> list[tuple[list[str], list[str]]]:
    """[(heading path, body lines)] in document order; text before the first heading goes under the title."""
    out: list[tuple[list[str], list[str]]] = []
    path: list[tuple[int, str]] = []
    body: list[str] = []
    in_fence = False

    def flush() -> None:
        if any(line.strip() for line in body):
            out.append(([h for _, h in path], list(body)))
        body.clear()

    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        m = None if in_fence else _HEADING.match(line)
        if m:
            flush()
            level = len(m.group(1))
            path = [(lv, h) for lv, h in path if lv < level] + [(level, m.group(2))]
        else:
            body.append(line)
    flush()
    # A lone top-level heading that just repeats the title adds nothing to the path.
    for heads, _ in out:
        if heads and heads[0].replace(" ", "").lower() == title.replace(" ", "").lower():
            heads.pop(0)
    return out


def chunk_procedure(proc: Procedure, max_words: int = 200, overlap: int = 40) -> list[Passage]:
    """Passages for one procedure; every passage text starts with `title > headings`."""
    if max_words < 10 or not 0 <= overlap < max_words:
        raise ValueError("need max_words >= 10 and 0 <= overlap < max_words")
    title = proc.title or proc.doc_id
    passages: list[Passage] = []
    for heads, lines in _sections(strip_front_matter(proc.text), title):
        heading = " > ".join([title, *heads])
        words = " ".join(lines).split()
        step = max_words - overlap
        start = 0
        while True:
            window = words[start:start + max_words]
            passages.append(Passage(f"{proc.doc_id}#{len(passages)}", proc.doc_id, heading,
                                    heading + "\n" + " ".join(window)))
            if start + max_words >= len(words):
                break
            start += step
    if not passages:  # empty document: still retrievable by its title
        passages.append(Passage(f"{proc.doc_id}#0", proc.doc_id, title, title + "\n"))
    return passages
