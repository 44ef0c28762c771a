"""LLM-guided gate: the LLM reads the query and outputs weights over the entity/causal/flow experts.

The model is asked for a JSON object {"entity": w, "causal": w, "flow": w}; small models often answer
with a word instead, so a lone intent word (or what/why/how) is accepted as a one-hot vote. Anything
else is a parse failure and the cue-word classifier answers. Every outcome is cached per query.
"""

from __future__ import annotations

import json
import re
from typing import Any

from runtime.llm import SamplingParams
from runtime.paths import cache_dir
from sopr_rag.config import GateConfig
from sopr_rag.gate.cache import GateCache, cache_key
from sopr_rag.gate.classifier import EXPERTS, classify

PROMPT_VERSION = "gate-v1"
SYSTEM = ("You route maintenance questions to experts. entity = what/which component, parameter, alert or "
          "command. causal = why/fault/cause of a symptom. flow = how to proceed, next step, order of steps. "
          'Reply only with JSON like {"entity": 0.2, "causal": 0.5, "flow": 0.3}.')
_WORD_VOTES = {"entity": "entity", "what": "entity", "which": "entity", "causal": "causal", "why": "causal",
               "cause": "causal", "flow": "flow", "how": "flow", "next": "flow"}


def parse_weights(text: str) -> dict[str, float] | None:
    """JSON weights or a lone intent word -> normalised weights; None when unparseable."""
    m = re.search(r"\{[^{}]*\}", text)
    if m:
        try:
            obj = json.loads(m.group(0))
            raw = {e: float(obj.get(e, 0.0)) for e in EXPERTS}
            if all(v >= 0 for v in raw.values()) and sum(raw.values()) > 0:
                total = sum(raw.values())
                return {e: v / total for e, v in raw.items()}
        except (json.JSONDecodeError, TypeError, ValueError, AttributeError):
            pass
    words = [_WORD_VOTES[w] for w in re.findall(r"[a-z]+", text.lower()) if w in _WORD_VOTES]
    if len(set(words)) == 1:
        return {e: (0.8 if e == words[0] else 0.1) for e in EXPERTS}
    return None


def apply_prior_and_floor(weights: dict[str, float], cfg: GateConfig) -> dict[str, float]:
    raw = {e: cfg.prior.get(e, 1.0) * weights[e] for e in EXPERTS}
    total = sum(raw.values()) or 1.0
    return {e: cfg.weight_floor + (1 - 3 * cfg.weight_floor) * raw[e] / total for e in EXPERTS}


class Gate:
    """weights(query) -> {"entity", "causal", "flow"} summing to 1, plus where they came from."""

    def __init__(self, cfg: GateConfig, llm: Any = None):
        self.cfg = cfg
        self._llm = llm
        path = cfg.cache_path or cache_dir("sopr_rag") / "gate_cache.jsonl"
        self.cache = GateCache(path if cfg.mode == "llm" else None)
        self.stats = {"llm_calls": 0, "cache_hits": 0, "fallbacks": 0, "prompt_tokens": 0}

    @property
    def identity(self) -> str:
        prior = ",".join(f"{self.cfg.prior.get(e, 1.0):g}" for e in EXPERTS)
        return f"{PROMPT_VERSION}|{self.cfg.backend}|{self.cfg.model or 'default'}|{self.cfg.weight_floor}|{prior}"

    def llm(self) -> Any:
        if self._llm is None:
            from runtime.llm import make_backend

            kw = {"base_url": self.cfg.base_url} if self.cfg.backend == "openai" and self.cfg.base_url else {}
            self._llm = make_backend(self.cfg.backend, model=self.cfg.model, **kw)
        return self._llm

    def weights(self, query: str) -> tuple[dict[str, float], str]:
        if self.cfg.mode == "rules":
            return classify(query, self.cfg.weight_floor, self.cfg.prior), "rules"
        key = cache_key(self.identity, query)
        hit = self.cache.get(key)
        if hit is not None:
            self.stats["cache_hits"] += 1
            return hit["weights"], hit["source"] + "+cache"
        gen = self.llm().generate([[{"role": "system", "content": SYSTEM}, {"role": "user", "content": query}]],
                                  SamplingParams(max_new_tokens=self.cfg.max_new_tokens))[0]
        self.stats["llm_calls"] += 1
        self.stats["prompt_tokens"] += gen.prompt_tokens
        parsed = parse_weights(gen.text)
        if parsed is None:
            self.stats["fallbacks"] += 1
            weights, source = classify(query, self.cfg.weight_floor, self.cfg.prior), "fallback"
        else:
            weights, source = apply_prior_and_floor(parsed, self.cfg), "llm"
        self.cache.put(key, {"weights": weights, "source": source, "raw": gen.text[:200]})
        return weights, source
