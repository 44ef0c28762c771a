"""The LLM Procedure Card: what the LLM must return for one SOP, validated by pydantic.

    {"components": [{"name": "...", "aliases": ["..."], "function": "..."}],
     "symptoms": ["..."], "conditions": ["..."], "causes": ["..."], "actions": ["..."]}

`parse_card(reply, source)` -> (card, None) or (None, error). The error names what is wrong in words a
small model can act on; it is sent back in the one repair turn. Lenient where intent is clear (a string
where a list was asked, a component given as a bare name); strict where the content is wrong: a
component must be named in the document (small models list "symptoms" or "runbook" as components)
and a card with neither components nor symptoms says nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sopr_rag.retrieval.identifiers import humanize

MAX_ITEMS = 8
MAX_ITEM_CHARS = 160
LIST_FIELDS = ("symptoms", "conditions", "causes", "actions")
# Names that describe the card or the document, not a component of the system.
NOT_COMPONENTS = frozenset({"symptom", "symptoms", "condition", "conditions", "cause", "causes", "action", "actions",
                            "component", "components", "alert", "alerts", "runbook", "procedure", "impact",
                            "meaning", "diagnosis", "mitigation", "system", "name", "function", "aliases"})


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", humanize(text).lower()))


def _clean(items: Any) -> list[str]:
    """A list of short distinct strings from whatever the model gave (string, list, numbers)."""
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list):
        raise ValueError("must be a list of short strings")
    out, seen = [], set()
    for it in items:
        if isinstance(it, dict):  # {"text": "..."} or {"symptom": "..."}: take its string values
            it = " ".join(str(v) for v in it.values() if isinstance(v, (str, int, float)))
        if not isinstance(it, (str, int, float)):
            continue
        s = " ".join(str(it).split())[:MAX_ITEM_CHARS].strip(" .;,")
        if s and s.lower() not in seen:
            seen.add(s.lower())
            out.append(s)
    return out[:MAX_ITEMS]


class Component(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=2, max_length=80)
    aliases: list[str] = Field(default_factory=list)
    function: str = ""

    @field_validator("name", "function", mode="before")
    @classmethod
    def _text(cls, v: Any) -> str:
        if isinstance(v, list):
            v = ", ".join(str(x) for x in v)
        return " ".join(str(v or "").split())[:MAX_ITEM_CHARS]

    @field_validator("aliases", mode="before")
    @classmethod
    def _aliases(cls, v: Any) -> list[str]:
        return _clean(v)

    def profile(self) -> str:
        """What the sentence encoder sees for this component: its names and what it does, in words."""
        names = ", ".join([humanize(self.name)] + [a for a in self.aliases if a.lower() != self.name.lower()])
        return f"{names}: {self.function}" if self.function else names


class LLMCard(BaseModel):
    model_config = ConfigDict(extra="ignore")
    components: list[Component] = Field(default_factory=list)
    symptoms: list[str] = Field(default_factory=list)
    conditions: list[str] = Field(default_factory=list)
    causes: list[str] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list)

    @field_validator("components", mode="before")
    @classmethod
    def _components(cls, v: Any) -> list:
        if isinstance(v, (str, dict)):
            v = [v]
        if not isinstance(v, list):
            raise ValueError("must be a list of {name, aliases, function} objects")
        return [{"name": c} if isinstance(c, str) else c for c in v][:MAX_ITEMS]

    @field_validator(*LIST_FIELDS, mode="before")
    @classmethod
    def _lists(cls, v: Any) -> list[str]:
        return _clean(v)


def _json_object(text: str) -> Any:
    """The first balanced {...} in the reply (models wrap JSON in prose or ``` fences)."""
    start = text.find("{")
    if start < 0:
        raise ValueError("the reply contains no JSON object; reply with one JSON object only")
    depth, in_str, esc = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_str:  # braces inside strings do not count
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return json.loads(text[start:i + 1])
    raise ValueError("the JSON object is not closed (the reply was cut off); reply with a shorter JSON object")


def parse_card(reply: str, source: str) -> tuple[LLMCard | None, str | None]:
    """Validate one reply against the schema and ground its components in `source` (the document text)."""
    try:
        obj = _json_object(reply)
        if not isinstance(obj, dict):
            raise ValueError("the reply must be a JSON object, not a list")
        card = LLMCard.model_validate(obj)
    except json.JSONDecodeError as err:
        return None, f"invalid JSON ({err.msg} at character {err.pos})"
    except ValidationError as err:
        first = err.errors()[0]
        return None, f"field {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    except ValueError as err:
        return None, str(err)
    doc_words = _words(source)
    kept, dropped = [], []
    for c in card.components:
        name_words = _words(c.name) - NOT_COMPONENTS
        # grounded: the name is not a card/section word and at least one of its words occurs in the document
        (kept if name_words and name_words & doc_words else dropped).append(c)
    card.components = kept
    if not card.components and not card.symptoms:
        why = f" ({', '.join(repr(c.name) for c in dropped)} are not components named in the runbook)" if dropped else ""
        return None, "the card needs at least one component that the runbook names, or observable symptoms" + why
    return card, None
