"""Rule-based extraction: one document's text -> a structured `Procedure` (no LLM needed)."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from pathlib import PurePosixPath

from sopr_rag.ingest.fields import (
    commands_in_code,
    dedupe,
    field_for_label,
    find_entities,
    split_condition,
    split_label,
)
from sopr_rag.ingest.markdown import Block, ParseError, parse_blocks, split_front_matter
from sopr_rag.types import Procedure, Step

_CAUSE_CUES = re.compile(r"\b(due to|caused by|because|the cause is|result of|usually|typically|when)\b", re.I)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z`])")
_STOP = set("a an the of to in on for and or with by at from is are be this that your you it its as".split())
MAX_ENTITIES = 80
MAX_CODE_IN_STEP = 160


def content_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def _title(meta: dict, blocks: list[Block], doc_id: str) -> str:
    if isinstance(meta.get("title"), str) and meta["title"].strip():
        return meta["title"].strip()
    for b in blocks:
        if b.kind == "heading":
            return b.text
        if b.kind == "paragraph" and len(b.text) <= 120 and not split_label(b.text)[0]:
            return b.text.rstrip(".:")
        break
    return PurePosixPath(doc_id).stem.replace("-", " ").replace("_", " ")


def _title_terms(title: str) -> list[str]:
    """Content-word bigrams of the title: the components the SOP is about ('freeze stat', 'cdu pump')."""
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z0-9]+", title) if w.lower() not in _STOP]
    return [f"{a} {b}".lower() for a, b in zip(words, words[1:])]


class _StepBuilder:
    """Numbers steps as written where possible, else by position; nested items become '3.1'."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self._used: set[str] = set()
        self._top = 0
        self._sub: dict[str, int] = defaultdict(int)
        self._parent: str | None = None

    def add(self, text: str, section: str | None, *, written: str | None = None, nested: bool = False) -> None:
        if nested and self._parent is not None:
            self._sub[self._parent] += 1
            number = f"{self._parent}.{self._sub[self._parent]}"
        else:
            self._top += 1
            number = written if written and written not in self._used else str(self._top)
            self._parent = number
        self._used.add(number)
        cond, _ = split_condition(text)
        self.steps.append(Step(number=number, text=text, condition=cond, section=section))

    def attach_code(self, code: str) -> None:
        cmds = "; ".join(commands_in_code(code)) or code.splitlines()[0]
        if self.steps:
            self.steps[-1].text += f" [`{cmds[:MAX_CODE_IN_STEP]}`]"


def parse_document(doc_id: str, raw: str) -> Procedure:
    """Parse one SOP; raises ParseError for empty/binary/contentless documents."""
    if "\x00" in raw:
        raise ParseError("binary content (NUL bytes)")
    if not raw.strip():
        raise ParseError("empty document")
    meta, body = split_front_matter(raw)
    blocks = parse_blocks(body)
    if not any(b.kind != "heading" for b in blocks):
        raise ParseError("no text besides headings")
    title = _title(meta, blocks, doc_id)

    fields: dict[str, list[str]] = defaultdict(list)
    sections: dict[str, list[str]] = defaultdict(list)
    # Per steps-section: items if it has any, else its paragraphs (runbooks write steps as prose + code).
    section_has_items = {b.section for b in blocks if b.kind == "item"}
    builder = _StepBuilder()
    current: str | None = None
    for b in blocks:
        key = b.section or title
        if b.kind == "heading":
            current = field_for_label(b.text)
            continue
        sections[key].append(b.text)
        text = b.text
        if b.kind == "paragraph" and text.rstrip(".:") == title:
            continue
        if b.kind == "paragraph":
            label, text = split_label(b.text)
            if label:
                current = label
            if not text:
                continue
        if b.kind == "row":  # first column of tables names parameters/components (header row included)
            fields["entities"].append(b.text.split(" | ")[0])
            continue
        is_steps = current in (None, "steps") and (b.kind == "item" or b.section not in section_has_items
                                                     and current == "steps")
        if b.kind == "code":
            if current == "steps" or builder.steps and current is None:
                builder.attach_code(b.text)
            continue
        if b.kind == "item" and (is_steps or b.ordered):
            builder.add(text, b.section, written=b.number if b.ordered else None, nested=b.level > 1)
        elif is_steps and b.kind == "paragraph" and current == "steps":
            builder.add(text, b.section)
        elif current and current != "steps":
            fields[current].append(text)
        elif not fields["scope"]:
            fields["scope"].append(text)

    body_no_code = re.sub(r"\]\([^)]*\)", "]", re.sub(r"```.*?```", " ", body, flags=re.S))  # no URLs
    code_cmds = [c for b in blocks if b.kind == "code" for c in commands_in_code(b.text)]
    listed = [p.strip() for item in fields.pop("entities", []) for p in re.split(r",|;", item) if p.strip()]
    entities = dedupe(find_entities(title + "\n" + body_no_code) + code_cmds + listed + _title_terms(title))
    cause_src = fields["scope"] + fields["triggers"] + fields["hazards"]
    causes = fields["causes"] + [s for t in cause_src for s in sentences(t) if _CAUSE_CUES.search(s)]
    return Procedure(
        doc_id=doc_id, title=title, text=raw, content_hash=content_hash(raw),
        scope=" ".join(fields["scope"])[:1000],
        triggers=dedupe(fields["triggers"]), preconditions=dedupe(fields["preconditions"]),
        hazards=dedupe(fields["hazards"]), causes=dedupe(causes),
        entities=entities[:MAX_ENTITIES], steps=builder.steps, outcome=" ".join(fields["outcome"])[:1000],
        sections={k: "\n".join(v) for k, v in sections.items()},
        metadata={k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool, list))},
    )
