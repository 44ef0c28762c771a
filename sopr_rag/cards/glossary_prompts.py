"""The glossary's two small questions (glossary.py): prompts, decoding schemas and validation.

  name      per runbook: which one component is the alert about?   {"component": "<1-4 words>"}
  describe  per component: what does it do, what else is it called? {"function": "...", "aliases": [...]}

A 0.5B model could not write a whole Procedure Card (cards/llm.py) but answers each of these: one short
field, decoded under a tiny JSON schema. Parsers return (value, None) or (None, error); the error is
worded for the one repair turn.
"""

from __future__ import annotations

import re
from typing import Any

from sopr_rag.cards.glossary_rules import CONDITION_WORDS, words
from sopr_rag.cards.schema import NOT_COMPONENTS, _clean, _Example, _is_title, _json_object, _restates, stems

# bump when a prompt or a rule below changes: cached answers are then not reused.
# v2 (after a Qwen2.5-Coder-0.5B smoke of v1 on 3 node runbooks): v1 labelled the excerpt "Runbook:" and the
# model named the component "Runbook" every time, repair included; its describe system prompt ("explain what
# a software or hardware component does") came back as the function ("A software or hardware component that
# manages ...") and a long function was cut mid-word by the schema's maxLength.
VERSION = "glossary-v2"
EXCERPT_CHARS = 600  # of the runbook shown with the name question
NAME_TOKENS, DESCRIBE_TOKENS = 32, 128  # compact JSON under the schemas below fits with room to spare
MAX_NAME_WORDS, MAX_FUNCTION_WORDS = 4, 12
FUNCTION_CHARS = 100  # the schema's bound; a function this long was cut off by it: asked again, shorter

NAME_SCHEMA: dict[str, Any] = {
    "type": "object", "properties": {"component": {"type": "string", "minLength": 2, "maxLength": 40}},
    "required": ["component"], "additionalProperties": False}
DESCRIBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"function": {"type": "string", "minLength": 10, "maxLength": FUNCTION_CHARS},
                   "aliases": {"type": "array", "items": {"type": "string", "minLength": 2, "maxLength": 40},
                               "minItems": 1, "maxItems": 3}},
    "required": ["function", "aliases"], "additionalProperties": False}

NAME_FORMAT = '{"component": "<name>"}'
DESCRIBE_FORMAT = '{"function": "<what it does, starting with a verb>", "aliases": ["<another name for it>"]}'
_NAME_EXAMPLE, _DESCRIBE_EXAMPLE = _Example(NAME_FORMAT), _Example(DESCRIBE_FORMAT)
# single words that would link any query mentioning them: never an alias on their own
GENERIC_ALIASES = frozenset({"service", "server", "daemon", "process", "system", "tool", "application", "app",
                             "program", "component", "database", "agent", "controller", "manager", "node",
                             "cluster", "pod", "monitor", "monitoring", "operator", "software", "hardware"})
# what a small model copies from the question instead of answering it
PARROTED = re.compile(r"software or hardware|program or device|\b(a|an|the) (component|part|piece of software)\b",
                      re.I)
NOT_NAMES = NOT_COMPONENTS | {"document", "description", "documentation", "problem", "issue", "title", "folder"}


def name_messages(source: str, folder: str | None) -> list[dict[str, str]]:
    """`source`: cards.llm.card_source(proc, EXCERPT_CHARS), "Title: ..." first."""
    hint = f"Filed under: {folder}\n" if folder else ""
    return [{"role": "system", "content": "You are a site reliability engineer. You say which program or device an "
                                          "alert is about. Reply with one JSON object and nothing else."},
            {"role": "user", "content": f"{hint}Alert description:\n<<<\n{source}\n>>>\n\nWhich program, service, "
             "daemon, database, device, disk or network link has the problem? Give its usual name in 1 to "
             f"{MAX_NAME_WORDS} words (not the alert name, not the problem, not the document), as JSON: "
             f"{NAME_FORMAT}"}]


def describe_messages(name: str, titles: list[str]) -> list[dict[str, str]]:
    alerts = "\n".join(f"- {t}" for t in titles)
    return [{"role": "system", "content": "You are a site reliability engineer. You explain in plain words what a "
                                          "program or device does. Reply with one JSON object and nothing else."},
            {"role": "user", "content": f"Component: {name}\nAlerts about it:\n{alerts}\n\nWhat does {name} do, and "
             f"what else do operators call it? Reply as JSON: {DESCRIBE_FORMAT}\n\"function\": what it does, in at "
             f"most {MAX_FUNCTION_WORDS} plain words, without the name {name!r}. \"aliases\": 1 to 3 other names, "
             "abbreviations or short descriptions."}]


def repair_turn(messages: list[dict[str, str]], reply: str, error: str) -> list[dict[str, str]]:
    return messages + [{"role": "assistant", "content": reply[:500]},
                       {"role": "user", "content": f"That reply cannot be used: {error}. Reply again with the "
                                                   "corrected JSON object only."}]


def _field(reply: str, key: str) -> Any:
    obj = _json_object(reply)
    if not isinstance(obj, dict) or key not in obj:
        raise ValueError(f'the reply must be a JSON object with "{key}"')
    return obj[key]


def parse_name(reply: str, title: str, doc_words: set[str]) -> tuple[str | None, str | None]:
    """The component named in `reply`, or the problem: empty, too long, the title, a problem, not in the runbook."""
    try:
        value = _field(reply, "component")
    except ValueError as err:  # json.JSONDecodeError is a ValueError
        return None, str(err)
    name = re.sub(r"^(the|a|an) ", "", " ".join(str(value or "").split()).strip(" .,;:'\"`"), flags=re.I)
    w = set(words(name))
    if not w - NOT_NAMES or "<" in name or _NAME_EXAMPLE.copied(name):
        return None, (f"{name!r} is not a program or a device; name the program, service, device or disk that "
                      "has the problem")
    if _is_title(set(stems(name)), set(stems(title))) or w & CONDITION_WORDS:
        return None, f"{name!r} is the alert or the problem, not a component; name the part that has the problem"
    if len(name.split()) > MAX_NAME_WORDS:
        return None, f"use 1 to {MAX_NAME_WORDS} words"
    if not (w - NOT_NAMES) & doc_words:
        return None, f"{name!r} is not named in the runbook; use a name the runbook uses"
    return name, None


def parse_description(reply: str, name: str, titles: list[str]) -> tuple[dict | None, str | None]:
    """{"function", "aliases"} from `reply`, or the problem: empty, too long, copied, restating the name."""
    try:
        function, aliases = _field(reply, "function"), _field(reply, "aliases")
    except ValueError as err:
        return None, str(err)
    cut_off = len(str(function or "")) >= FUNCTION_CHARS - 1
    function = " ".join(str(function or "").split()).strip(" .;")
    name_stems, title_stems = set(stems(name)), {s for t in titles for s in stems(t)}
    if len(stems(function)) < 2 or "<" in function or _DESCRIBE_EXAMPLE.copied(function):
        return None, '"function": say what it does in a few plain words'
    if cut_off or len(function.split()) > 2 * MAX_FUNCTION_WORDS or PARROTED.search(function):
        return None, f'"function": say what {name} does in at most {MAX_FUNCTION_WORDS} words, starting with a verb'
    if _restates(function, name_stems, title_stems):
        return None, f'"function" only restates the name or the alerts; say what {name} does in other words'
    kept = []
    for a in _clean(aliases if isinstance(aliases, (list, str)) else [], 3):
        st = set(stems(a))
        if (st and st != name_stems and "<" not in a and len(a.split()) <= 5 and not _DESCRIBE_EXAMPLE.copied(a)
                and set(words(a)) - NOT_COMPONENTS and not (len(st) == 1 and a.lower() in GENERIC_ALIASES)):
            kept.append(a)
    return {"function": function, "aliases": kept}, None


def doc_words(text: str, folder: str | None) -> set[str]:
    """The words an answer to the name question must share with the runbook (or its folder)."""
    return set(words(f"{text} {folder or ''}"))
