"""Optional LLM extraction: enrich a rule-parsed Procedure with fields the LLM finds in the text.

The LLM (runtime backend) returns JSON lists for triggers, causes, preconditions and entities; they are
merged into the rule-based result (never replacing it). Results are cached per document content hash
(append-only JSONL), so re-indexing an unchanged document makes no LLM call. Unparseable output adds
nothing and is cached as such.
"""

from __future__ import annotations

import json
import re
from typing import Any

from runtime.llm import SamplingParams
from sopr_rag.gate.cache import GateCache
from sopr_rag.ingest.fields import dedupe
from sopr_rag.types import Procedure

PROMPT_VERSION = "extract-v1"
FIELDS = ("triggers", "causes", "preconditions", "entities")
MAX_DOC_CHARS = 6000
MAX_ITEMS = 20
SYSTEM = ("Extract from the maintenance procedure a JSON object with lists of short strings: "
          '"triggers" (symptoms/alerts), "causes", "preconditions", "entities" (components, parameters, '
          "commands). Reply with JSON only.")


def parse_fields(text: str) -> dict[str, list[str]]:
    m = re.search(r"\{.*\}", text, re.S)
    if not m:
        return {}
    try:
        obj = json.loads(m.group(0))
    except json.JSONDecodeError:
        return {}
    if not isinstance(obj, dict):
        return {}
    return {f: [str(x)[:200] for x in obj[f][:MAX_ITEMS] if isinstance(x, (str, int, float))]
            for f in FIELDS if isinstance(obj.get(f), list)}


class LLMExtractor:
    """extract(proc) -> proc enriched in place; stats count calls and prompt tokens for telemetry."""

    def __init__(self, llm: Any, cache_path: str | None, max_new_tokens: int = 256):
        self.llm, self.max_new_tokens = llm, max_new_tokens
        self.cache = GateCache(cache_path)
        self.stats = {"llm_calls": 0, "llm_tokens": 0, "cache_hits": 0}

    def extract(self, proc: Procedure) -> Procedure:
        key = f"{PROMPT_VERSION}:{proc.content_hash}"
        found = self.cache.get(key)
        if found is None:
            prompt = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": proc.text[:MAX_DOC_CHARS]}]
            gen = self.llm.generate([prompt], SamplingParams(max_new_tokens=self.max_new_tokens))[0]
            self.stats["llm_calls"] += 1
            self.stats["llm_tokens"] += gen.prompt_tokens + len(gen.token_ids)
            found = parse_fields(gen.text)
            self.cache.put(key, found)
        else:
            self.stats["cache_hits"] += 1
        for f, items in found.items():
            setattr(proc, f, dedupe(getattr(proc, f) + items))
        proc.metadata["llm_extracted"] = sorted(found)
        return proc
