"""Paper claims (experiments/claims.yaml) checked against result JSONs: met / not met / not measured.

Result files are read as plain JSON, the one stable surface the packages share; anything missing (file,
metric, method) makes the claim "not measured" with the reason, never a guessed number.
"""

from __future__ import annotations

import json
import math
import operator
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from runtime.config import StrictModel, load_config

MET, NOT_MET, NOT_MEASURED = "met", "not met", "not measured"
OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
PathKey = str | int | dict[str, Any]


class Rule(StrictModel):
    kind: Literal["threshold", "ratio", "not_worse_than_best", "best_margin", "sia_target"]
    target: float = 0.0
    op: Literal[">=", ">", "<=", "<"] = ">="
    fmt: str = ".3f"
    unit: str = ""
    path: list[PathKey] = Field(default_factory=list)
    reference: list[PathKey] = Field(default_factory=list)
    method: str = ""
    baselines: list[str] = Field(default_factory=list)
    metric: str = ""
    groups: list[str] = Field(default_factory=lambda: ["overall"])
    query_set: str = ""  # suffix of the query-set name, e.g. ".dev-hard"
    group: str | list[str] = "overall"
    part: Literal["reward", "time", "random", "all"] = "all"
    rate_window: tuple[float, float] = (0.2, 0.4)


class Claim(StrictModel):
    id: str
    paper: str
    target: str
    sources: dict[Literal["full", "small"], str]
    setup: str = ""
    rule: Rule


class Paper(StrictModel):
    id: str
    title: str
    repro: str
    claims: list[Claim]


class ClaimsFile(StrictModel):
    papers: list[Paper]


class Outcome(BaseModel):
    verdict: str
    number: str
    detail: str = ""


class Missing(LookupError):
    """A key, list item or method the rule needs is absent from the result file."""


def load_claims(path: str | Path) -> ClaimsFile:
    return load_config(ClaimsFile, path)


def lookup(data: Any, path: list[PathKey]) -> Any:
    for key in path:
        if isinstance(key, dict):
            if not isinstance(data, list):
                raise Missing(f"expected a list to select {key}")
            data = next((x for x in data if all(x.get(k) == v for k, v in key.items())), None)
            if data is None:
                raise Missing(f"no item matching {key}")
        elif isinstance(data, dict) and key in data:
            data = data[key]
        elif isinstance(data, list) and isinstance(key, int) and -len(data) <= key < len(data):
            data = data[key]
        else:
            raise Missing(f"no key {key!r}")
    return data


def number(data: Any, path: list[PathKey]) -> float:
    value = lookup(data, path)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise Missing(f"{'.'.join(map(str, path))} is not a number: {value!r}")
    return float(value)


def render_setup(template: str, data: dict[str, Any]) -> str:
    """'{a.b}' placeholders filled from the result JSON; an absent field shows as '?'."""
    def fill(match: re.Match) -> str:
        try:
            keys = [int(k) if k.lstrip("-").isdigit() else k for k in match.group(1).split(".")]
            return str(lookup(data, keys))
        except Missing:
            return "?"
    return re.sub(r"\{([^{}]+)\}", fill, template)


def _fmt(x: float, rule: Rule) -> str:
    return f"{x:{rule.fmt}}{(' ' + rule.unit) if rule.unit else ''}"


def _verdict(ok: bool) -> str:
    return MET if ok else NOT_MET


def check_threshold(rule: Rule, data: dict) -> Outcome:
    x = number(data, rule.path)
    return Outcome(verdict=_verdict(OPS[rule.op](x, rule.target)), number=_fmt(x, rule),
                   detail=f"needs {rule.op} {rule.target:g}")


def check_ratio(rule: Rule, data: dict) -> Outcome:
    x, ref = number(data, rule.path), number(data, rule.reference)
    if ref == 0:
        raise Missing("reference value is 0")
    r = x / ref
    return Outcome(verdict=_verdict(OPS[rule.op](r, rule.target)), number=_fmt(r, rule),
                   detail=f"{x:g} / {ref:g}; needs {rule.op} {rule.target:g}")


def _query_sets(rule: Rule, data: dict) -> dict[str, dict]:
    sets = lookup(data, ["query_sets"])
    picked = {k: v for k, v in sets.items() if k.endswith(rule.query_set)}
    if not picked:
        raise Missing(f"no query set ending with {rule.query_set!r}")
    return picked


def _margin(rule: Rule, methods: dict, group_path: list[str]) -> tuple[float, str]:
    """(method - best baseline) on rule.metric in one group, and the best baseline's name."""
    if rule.method not in methods:
        raise Missing(f"method {rule.method!r} not in results")
    ours = number(methods[rule.method], [*group_path, rule.metric])
    base = {b: number(methods[b], [*group_path, rule.metric]) for b in rule.baselines
            if b in methods and _has(methods[b], [*group_path, rule.metric])}
    if not base:
        raise Missing(f"no baseline has {'/'.join(group_path)}/{rule.metric}")
    best = max(base, key=base.get)
    return ours - base[best], best


def _has(data: Any, path: list[PathKey]) -> bool:
    try:
        number(data, path)
        return True
    except Missing:
        return False


def check_best_margin(rule: Rule, data: dict) -> Outcome:
    group = [rule.group] if isinstance(rule.group, str) else list(rule.group)
    parts = []
    for name, qset in _query_sets(rule, data).items():
        margin, best = _margin(rule, qset["methods"], group)
        parts.append((margin, f"{name.split('.')[-1]}: {margin:{rule.fmt}} vs {best}"))
    worst = min(m for m, _ in parts)
    return Outcome(verdict=_verdict(worst >= rule.target - 1e-12), number=_fmt(worst, rule),
                   detail="; ".join(d for _, d in parts) + f"; needs >= {rule.target:+g}")


def check_not_worse_than_best(rule: Rule, data: dict) -> Outcome:
    margins: list[tuple[float, str]] = []
    for name, qset in _query_sets(rule, data).items():
        methods = qset["methods"]
        if rule.method not in methods:
            raise Missing(f"method {rule.method!r} not in {name}")
        for group in rule.groups:
            subgroups = [[group]] if group == "overall" else \
                [[group, g] for g in sorted(methods[rule.method].get(group, {}))]
            for path in subgroups:
                if _has(methods[rule.method], [*path, rule.metric]):
                    m, best = _margin(rule, methods, path)
                    margins.append((m, f"{name.split('.')[-1]}/{path[-1]} vs {best}"))
    if not margins:
        raise Missing(f"no group has {rule.metric}")
    worst, where = min(margins)
    losses = sum(m < rule.target - 1e-12 for m, _ in margins)
    return Outcome(verdict=_verdict(losses == 0), number=_fmt(worst, rule),
                   detail=f"worst margin at {where}; loses in {losses}/{len(margins)} groups")


def check_sia_target(rule: Rule, data: dict) -> Outcome:
    claims = data.get("analysis", {}).get("claims", {})
    if rule.part in claims:  # a powered run: decided by its paired CIs (Holm, equivalence), not point estimates
        c = claims[rule.part]
        return Outcome(verdict=c["verdict"], number=c["number"], detail=c["detail"])
    methods = lookup(data, ["methods"])
    by_family: dict[str, list[dict]] = {}
    for m in methods:
        by_family.setdefault(m.get("family"), []).append(m)
    if not by_family.get("base") or not by_family.get("dense"):
        raise Missing("base or dense run missing")
    base, dense = by_family["base"][0], by_family["dense"][0]
    lo, hi = rule.rate_window
    points = [m for m in by_family.get("sia", []) if lo - 1e-9 <= m.get("target_rate", -1) <= hi + 1e-9]
    if not points:
        raise Missing(f"no SIA point with target rate in [{lo:g}, {hi:g}]")
    dense_added = dense["wall_s"] - base["wall_s"]
    rows = []
    for p in sorted(points, key=lambda m: m["target_rate"]):
        rnd = next((r for r in by_family.get("random", []) if r.get("target_rate") == p["target_rate"]), None)
        added = p["wall_s"] - base["wall_s"]
        ok = {"reward": p["reward"] >= dense["reward"] - dense["reward_ci95"],
              "time": added <= 0.5 * dense_added,
              "random": rnd is not None and p["reward"] > rnd["reward"]}
        ok["all"] = all(ok.values())
        shown = {"reward": f"{p['reward']:{rule.fmt}} vs dense {dense['reward']:{rule.fmt}}±{dense['reward_ci95']:{rule.fmt}}",
                 "time": f"{added:+.1f}s vs dense {dense_added:+.1f}s over base"
                 + (" (below base: load noise dominates)" if added < 0 or dense_added <= 0 else ""),
                 "random": f"{p['reward']:{rule.fmt}} vs random {rnd['reward']:{rule.fmt}}" if rnd else "no random run"}
        shown["all"] = f"reward {ok['reward']}, time {ok['time']}, random {ok['random']}"
        steered = p.get("steered_fraction")
        label = p["method"] + (f" ({steered:.0%} steered)" if isinstance(steered, float) else "")
        rows.append((ok[rule.part], f"{label}: {shown[rule.part]}"))
    met = [r for r in rows if r[0]]
    return Outcome(verdict=_verdict(bool(met)), number=(met or rows)[0][1], detail="; ".join(r[1] for r in rows))


CHECKS = {"threshold": check_threshold, "ratio": check_ratio, "best_margin": check_best_margin,
          "not_worse_than_best": check_not_worse_than_best, "sia_target": check_sia_target}


def read_result(path: Path) -> dict[str, Any] | None:
    """The parsed JSON, or None when the file is absent. A corrupt file raises: it must not pass silently."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def evaluate(claim: Claim, results_dir: Path) -> dict[str, Any]:
    """One report row: quotes the full-scale file; a small-scale number is shown but is never a verdict."""
    row = {"claim": claim, "scale": None, "source": claim.sources.get("full", ""), "setup": ""}
    for scale in ("full", "small"):
        name = claim.sources.get(scale)
        data = read_result(results_dir / name) if name else None
        if data is None:
            continue
        row.update(scale=scale, source=name, setup=render_setup(claim.setup, data))
        try:
            out = CHECKS[claim.rule.kind](claim.rule, data)
        except (Missing, KeyError, TypeError) as err:
            out = Outcome(verdict=NOT_MEASURED, number="-", detail=f"{name}: {err}")
        if scale == "small" and out.verdict != NOT_MEASURED:
            out = Outcome(verdict=NOT_MEASURED, number=f"{out.number} (small scale)",
                          detail=f"only the small-scale run exists ({out.verdict} at that scale); {out.detail}")
        row["outcome"] = out
        return row
    wanted = " or ".join(claim.sources.values())
    row["outcome"] = Outcome(verdict=NOT_MEASURED, number="-", detail=f"no result file ({wanted})")
    return row
