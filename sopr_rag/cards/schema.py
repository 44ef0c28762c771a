"""The LLM Procedure Card: what the LLM must return for one SOP, validated by pydantic.

    {"components": [{"name": "...", "aliases": ["..."], "function": "..."}],
     "symptoms": ["..."], "conditions": ["..."], "causes": ["..."], "actions": ["..."]}

`parse_card(reply, source, example)` -> (card, None) or (None, error). The error names what is wrong in
words a small model can act on (at most three problems); it is sent back in the one repair turn.
Lenient where intent is clear (a string where a list was asked, a component given as a bare name, too
many items: the first ones are kept, aliases that repeat the name are dropped); strict where the content
is useless, which is what a 0.5B model produces when it does not understand the runbook:

  - no component named in the document (small models list "symptoms" or "runbook" as components);
  - a component that is the alert / document title split into words ("Node Clock Not Synchronising"),
    or whose function restates its name or the title ("checks if the node clock is not synchronising");
  - any text copied from the prompt's format `example` (same words, or a shared 4-word run);
  - no symptoms once near-duplicates of the title are removed, or symptoms/conditions/causes that repeat
    one sentence: near-duplicates are removed across the three lists (symptoms first) and a list whose
    every item repeats an earlier one is an error; at least two distinct items must remain.

`CARD_JSON_SCHEMA` bounds every list (at most 3 components, 4 items per list, short strings) so a reply
fits the token budget; backends with structured output decode under it (runtime.llm SamplingParams).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sopr_rag.retrieval.identifiers import humanize

MAX_COMPONENTS = 3
MAX_ALIASES = 3
MAX_ITEMS = 4  # per list
MAX_ITEM_WORDS = 12  # asked for in the prompt
MAX_ITEM_CHARS = 160  # kept when parsing (lenient); the decoding schema is tighter
LIST_FIELDS = ("symptoms", "conditions", "causes", "actions")
# string bounds of the decoding schema: worst case ~2.3k characters of compact JSON (see max_card_chars)
NAME_CHARS, FUNCTION_CHARS, ITEM_CHARS = 40, 100, 80


def _str(lo: int, hi: int) -> dict[str, Any]:
    return {"type": "string", "minLength": lo, "maxLength": hi}


def _list(item: dict[str, Any], lo: int, hi: int) -> dict[str, Any]:
    return {"type": "array", "items": item, "minItems": lo, "maxItems": hi}


CARD_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "components": _list({"type": "object",
                             "properties": {"name": _str(2, NAME_CHARS),
                                            "aliases": _list(_str(2, NAME_CHARS), 1, MAX_ALIASES),
                                            "function": _str(8, FUNCTION_CHARS)},
                             "required": ["name", "aliases", "function"], "additionalProperties": False},
                            1, MAX_COMPONENTS),
        "symptoms": _list(_str(3, ITEM_CHARS), 1, MAX_ITEMS),
        "conditions": _list(_str(3, ITEM_CHARS), 0, MAX_ITEMS),
        "causes": _list(_str(3, ITEM_CHARS), 1, MAX_ITEMS),
        "actions": _list(_str(3, ITEM_CHARS), 1, MAX_ITEMS),
    },
    "required": ["components", *LIST_FIELDS],
    "additionalProperties": False,
}


def max_card_chars() -> int:
    """Length of the longest compact JSON that CARD_JSON_SCHEMA admits (size max_new_tokens above it)."""
    comp = {"name": "n" * NAME_CHARS, "aliases": ["a" * NAME_CHARS] * MAX_ALIASES, "function": "f" * FUNCTION_CHARS}
    card = {"components": [comp] * MAX_COMPONENTS, **{f: ["i" * ITEM_CHARS] * MAX_ITEMS for f in LIST_FIELDS}}
    return len(json.dumps(card, separators=(",", ":")))

# Names that describe the card or the document, not a component of the system.
NOT_COMPONENTS = frozenset({"symptom", "symptoms", "condition", "conditions", "cause", "causes", "action", "actions",
                            "component", "components", "alert", "alerts", "runbook", "procedure", "impact",
                            "meaning", "diagnosis", "mitigation", "system", "name", "function", "aliases"})


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", humanize(text).lower()))


STOPWORDS = frozenset("a an the of to in on for and or is are was were be been being it its this that these those "
                      "with by as at from when if into than then there their they has have had can may will would "
                      "should could what which who how so such do does some any all".split())


def _stem(word: str) -> str:
    """A crude stem, enough to match synchronising/synchronizing, files/file, notices/notice."""
    w = word.replace("z", "s")
    if len(w) > 4:
        for suf in ("ing", "ed", "es", "s"):
            if w.endswith(suf) and not (suf == "s" and w.endswith("ss")):
                w = w[:-len(suf)]
                break
    return w[:-1] if len(w) > 3 and w.endswith("e") else w


def stems(text: str) -> list[str]:
    """Content-word stems of `text` in order (identifiers split, stop words dropped)."""
    return [_stem(w) for w in re.findall(r"[a-z0-9]+", humanize(text).lower()) if w not in STOPWORDS]


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else float(a == b)


def _clean(items: Any, limit: int = MAX_ITEMS) -> list[str]:
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
    return out[:limit]


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
        return _clean(v, MAX_ALIASES)

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
        return [{"name": c} if isinstance(c, str) else c for c in v][:MAX_COMPONENTS]

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
    raise ValueError(f"the JSON object is not closed (the reply was cut off); write a shorter one: at most "
                     f"{MAX_COMPONENTS} components and {MAX_ITEMS} items per list, each under {MAX_ITEM_WORDS} words")


def _title(source: str) -> str:
    first = source.split("\n", 1)[0]
    return first[len("Title:"):].strip() if first.startswith("Title:") else ""


def _quote(text: str, n: int = 50) -> str:
    return repr(text if len(text) <= n else text[:n].rsplit(" ", 1)[0] + "...")


class _Example:
    """The strings of the prompt's format example, to catch replies that copy them."""

    def __init__(self, example: str | None):
        texts: list[str] = []

        def walk(v: Any) -> None:
            if isinstance(v, str):
                texts.append(v)
            elif isinstance(v, list):
                for x in v:
                    walk(x)
            elif isinstance(v, dict):
                for x in v.values():
                    walk(x)

        if example:
            walk(json.loads(example))
        self.sets = [set(st) for st in map(stems, texts) if st]
        self.grams = {g for st in map(stems, texts) for g in _ngrams(st, 4)}

    def copied(self, text: str) -> bool:
        st = stems(text)
        if not st:
            return False
        mine = set(st)
        return any(_jaccard(mine, ex) >= 0.75 for ex in self.sets) or bool(_ngrams(st, 4) & self.grams)


def _ngrams(seq: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)}


def _is_title(name: set[str], title: set[str]) -> bool:
    """The name is the title split into words: all of it (2+ words), or 3+ of its words covering 3/4 of it."""
    if not name or not title or not name <= title:
        return False
    return (name == title and len(name) >= 2) or (len(name) >= 3 and len(name) >= 0.75 * len(title))


def _restates(function: str, name: set[str], title: set[str]) -> bool:
    """The function says nothing the name and title do not: 60% of its words from the name, or all from both."""
    fn = set(stems(function))
    if not fn:
        return bool(function.strip())
    return len(fn & name) >= 0.6 * len(fn) or fn <= name | title


def _copies(card: LLMCard, example: _Example) -> list[str]:
    """One problem naming the texts copied from the format example (placeholders or a worked example)."""
    texts = [t for c in card.components for t in (c.name, *c.aliases, c.function)]
    texts += [it for f in LIST_FIELDS for it in getattr(card, f)]
    copied = [t for t in texts if example.copied(t)]
    if not copied:
        return []
    return [f"copied from the format example: {', '.join(_quote(t) for t in copied[:2])}; write about this "
            "runbook instead"]


def _check_components(card: LLMCard, doc_words: set[str], title: set[str]) -> list[str]:
    problems: list[str] = []
    kept, dropped, names = [], [], set()
    for c in card.components:
        key = frozenset(stems(c.name))
        if key in names:  # the same component twice: keep the first
            continue
        names.add(key)
        name_words = _words(c.name) - NOT_COMPONENTS
        # grounded: the name is not a card/section word and at least one of its words occurs in the document
        (kept if name_words and name_words & doc_words else dropped).append(c)
    card.components = kept
    if not kept:
        why = f" ({', '.join(repr(c.name) for c in dropped)} are not named in the runbook)" if dropped else ""
        return ["components is empty: name 1-3 software or hardware parts that the runbook is about" + why]
    for c in kept:
        name = set(stems(c.name))
        c.aliases = [a for a in c.aliases if set(stems(a)) != name and a.lower() != c.name.lower()]
        if _is_title(name, title):
            problems.append(f"component {_quote(c.name)} is the alert title, not a part; name the software or "
                            "hardware it is about")
        elif c.function and _restates(c.function, name, title):
            problems.append(f"the function of {_quote(c.name)} only restates its name; say what it does in "
                            "other plain words")
    return problems


def _check_lists(card: LLMCard, title: set[str]) -> list[str]:
    """Near-duplicates across symptoms -> conditions -> causes are dropped (the title counts as said
    already; actions are deduplicated among themselves); what that empties is a problem."""
    seen: list[set[str]] = [title] if title else []
    repeated: dict[str, int] = {}
    for f in LIST_FIELDS:
        if f == "actions":
            seen = []
        kept = []
        for it in getattr(card, f):
            st = set(stems(it))
            if any(_jaccard(st, s) >= 0.6 for s in seen):
                repeated[f] = repeated.get(f, 0) + 1
                continue
            seen.append(st)
            kept.append(it)
        setattr(card, f, kept)
    problems = []
    if not card.symptoms:
        problems.append("symptoms only repeat the alert title: say what an operator would notice, in everyday "
                        "words" if repeated.get("symptoms") else "symptoms is empty: say what an operator would notice")
    if repeated.get("causes") and not card.causes:  # conditions that repeat the title are just dropped
        problems.append("causes only repeat the symptoms or the title: give likely root causes in other words")
    if not problems and len(card.symptoms) + len(card.conditions) + len(card.causes) < 2:
        problems.append("give at least one likely cause or condition besides the symptoms")
    return problems


def parse_card(reply: str, source: str, example: str | None = None) -> tuple[LLMCard | None, str | None]:
    """Validate one reply against the schema and the rules above; `source` is the document text as the
    LLM saw it ("Title: ..." first), `example` the format example of the prompt (JSON text), if any."""
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
    title = set(stems(_title(source)))
    ex = _Example(example)
    problems = _copies(card, ex) + _check_components(card, _words(source), title) + _check_lists(card, title)
    if problems:
        return None, "; ".join(list(dict.fromkeys(problems))[:3])
    return card, None
