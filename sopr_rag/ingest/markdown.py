"""Markdown / plain text -> a flat list of blocks (headings, paragraphs, list items, code, table rows).

markdown-it (CommonMark + tables) does the parsing; this module only flattens its token stream into
what the field extractor needs: every block knows the heading it sits under and, for list items,
its written number and nesting depth. Plain-text SOPs go through the same parser: "1) ..." lines are
CommonMark ordered lists and "Label: text" lines become paragraphs the extractor recognises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml
from markdown_it import MarkdownIt

_MD = MarkdownIt("commonmark").enable("table")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)


class ParseError(ValueError):
    """A document that cannot be turned into a procedure (empty, binary, no content)."""


@dataclass
class Block:
    kind: str  # "heading" | "paragraph" | "item" | "code" | "row"
    text: str  # inline markdown stripped; code spans keep their backticks (entity hints)
    section: str | None = None  # text of the nearest heading above
    level: int = 0  # heading level, or list nesting depth (1 = top level) for items
    number: str | None = None  # written number of an ordered list item ("3"), None for bullets
    ordered: bool = False


def split_front_matter(text: str) -> tuple[dict, str]:
    """Optional YAML front matter; a malformed header is kept as body text, not an error."""
    m = _FRONT_MATTER.match(text)
    if not m:
        return {}, text
    try:
        meta = yaml.safe_load(m.group(1))
    except yaml.YAMLError:
        return {}, text
    return (meta if isinstance(meta, dict) else {}), text[m.end():]


def _inline_text(token) -> str:
    parts: list[str] = []
    for child in token.children or []:
        if child.type == "text":
            parts.append(child.content)
        elif child.type == "code_inline":
            parts.append(f"`{child.content}`")
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def parse_blocks(body: str) -> list[Block]:
    tokens = _MD.parse(body)
    blocks: list[Block] = []
    section: str | None = None
    list_stack: list[bool] = []  # ordered? per open list
    item_stack: list[str | None] = []  # number of each open list item
    item_has_text: list[bool] = []
    heading_level = 0
    in_heading = False
    row: list[str] = []
    for i, tok in enumerate(tokens):
        t = tok.type
        if t == "heading_open":
            in_heading, heading_level = True, int(tok.tag[1])
        elif t == "heading_close":
            in_heading = False
        elif t in ("bullet_list_open", "ordered_list_open"):
            list_stack.append(t == "ordered_list_open")
        elif t in ("bullet_list_close", "ordered_list_close"):
            list_stack.pop()
        elif t == "list_item_open":
            item_stack.append(tok.info or None)
            item_has_text.append(False)
        elif t == "list_item_close":
            item_stack.pop()
            item_has_text.pop()
        elif t == "tr_open":
            row = []
        elif t == "tr_close":
            if any(row):
                blocks.append(Block("row", " | ".join(row), section))
        elif t in ("fence", "code_block"):
            code = tok.content.strip("\n")
            if code.strip():
                blocks.append(Block("code", code, section, level=len(list_stack)))
        elif t == "inline":
            text = _inline_text(tok)
            if not text:
                continue
            prev = tokens[i - 1].type if i else ""
            if in_heading:
                section = text
                blocks.append(Block("heading", text, section, level=heading_level))
            elif prev in ("th_open", "td_open"):
                row.append(text)
            elif item_stack and not item_has_text[-1]:
                item_has_text[-1] = True
                blocks.append(Block("item", text, section, level=len(list_stack), number=item_stack[-1],
                                    ordered=list_stack[-1]))
            elif item_stack:  # a later paragraph of the same list item: continue its text
                last_item = next(b for b in reversed(blocks) if b.kind == "item")
                last_item.text += " " + text
            else:
                blocks.append(Block("paragraph", text, section))
    return blocks
