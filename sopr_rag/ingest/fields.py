"""Which Procedure field a heading or a "Label:" prefix introduces, and entity/condition patterns.

Rule-based on purpose: it must work with no LLM on SOPs as found in the wild (runbooks use
Meaning/Impact/Diagnosis/Mitigation, plant SOPs use Scope/Hazards/Procedure/Outcome).
"""

from __future__ import annotations

import re

# Ordered: the first field whose keyword occurs in the (lower-cased) label wins.
FIELD_KEYWORDS: list[tuple[str, tuple[str, ...]]] = [
    ("outcome", ("expected outcome", "expected result", "outcome", "result", "verification", "success criteria")),
    ("hazards", ("hazard", "safety", "caution", "warning", "danger", "risk", "impact")),
    ("preconditions", ("precondition", "prerequisite", "before you begin", "before starting", "requirement")),
    ("causes", ("cause", "why it happens", "why this happens", "root cause", "reason")),
    ("triggers", ("symptom", "trigger", "alert", "alarm", "signs", "indication", "when to use")),
    ("entities", ("equipment", "tools", "parameter", "component", "materials", "affected system")),
    ("scope", ("scope", "applicab", "applies to", "purpose", "overview", "meaning", "description", "summary",
               "about", "introduction", "context")),
    ("steps", ("procedure", "steps", "action", "diagnos", "mitigat", "resolution", "remediat", "troubleshoot",
               "response", "instructions", "how to", "fix", "recovery", "workaround", "runbook", "investigat")),
]

_LABEL = re.compile(r"^([A-Z][A-Za-z /&()-]{1,40}?)\s*:\s*(.*)$", re.S)


def field_for_label(label: str) -> str | None:
    low = label.lower().strip()
    for name, keys in FIELD_KEYWORDS:
        if any(k in low for k in keys):
            return name
    return None


def split_label(text: str) -> tuple[str | None, str]:
    """'Symptoms: a, b' -> ('triggers', 'a, b'); text without a known label -> (None, text)."""
    m = _LABEL.match(text)
    if not m:
        return None, text
    name = field_for_label(m.group(1))
    return (name, m.group(2).strip()) if name else (None, text)


# "If X, then Y" / "When X: Y" / "In case X, Y": the guard becomes the step's branch condition.
_CONDITION = re.compile(r"^(?P<cond>(?:if|when|whenever|in case|unless|should|once)\b[^,:;]{3,200}?)"
                        r"(?:,\s*then\b|\bthen\b|,|:)\s*(?P<action>.+)$", re.I | re.S)


def split_condition(text: str) -> tuple[str | None, str]:
    m = _CONDITION.match(text.strip())
    if not m or len(m.group("action")) < 3:
        return None, text
    return m.group("cond").strip(), m.group("action").strip()


_ENTITY_PATTERNS = [
    re.compile(r"`([^`]{2,60})`"),  # code spans: alert names, commands, files, metrics
    re.compile(r"\b[A-Z][A-Z0-9]*(?:[-_][A-Z0-9]+)+\b"),  # GEN-1, UPS_ON_BATTERY, CRAC-1
    re.compile(r"\b[A-Z]{2,6}s?\b"),  # acronyms: UPS, ATS, CDU
    re.compile(r"\b[A-Z][a-z]+(?:[A-Z][a-z0-9]+)+\b"),  # CamelCase alert names
    re.compile(r"\b[a-z][a-z0-9]+(?:[_.][a-z0-9]+)+\b"),  # snake_case metrics, dotted files
    re.compile(r"\b[a-z][a-z0-9]+(?:-[a-z0-9]+){1,3}\b"),  # kebab-case components: config-reloader
    re.compile(r"\b\d+(?:\.\d+)?\s?(?:V|A|Hz|kW|W|bar|kPa|Pa|C|F|%|percent|minutes|seconds|litres|liters|"
               r"GB|MB|TB|ms)\b"),  # parameter values
]
_NOT_ENTITIES = {"if", "then", "ok", "or", "and", "the", "a", "an", "id", "to", "do", "no"}
_COMMAND_LINE = re.compile(r"^\s*\$?\s*([a-z][\w.-]+(?:\s+[a-z][\w-]+)?)", re.M)


def find_entities(text: str) -> list[str]:
    out: list[str] = []
    for pat in _ENTITY_PATTERNS:
        for m in pat.finditer(text):
            ent = (m.group(1) if pat.groups else m.group(0)).strip()
            if ent.lower() not in _NOT_ENTITIES and len(ent) >= 2:
                out.append(ent)
    return out


def commands_in_code(code: str) -> list[str]:
    """First word pair of shell-looking lines ('$ kubectl logs ...' -> 'kubectl logs')."""
    cmds = []
    for line in code.splitlines()[:20]:
        if line.lstrip().startswith("$"):
            m = _COMMAND_LINE.match(line)
            if m:
                cmds.append(m.group(1))
    return cmds


def dedupe(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for it in items:
        key = it.lower()
        if key not in seen:
            seen.add(key)
            out.append(it)
    return out
