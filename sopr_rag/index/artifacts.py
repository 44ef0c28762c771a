"""Per-document index artifacts: build (parse -> card -> expert parts -> embeddings), save, load.

Each SOP owns exactly two files, `docs/<key>.json` and `docs/<key>.npz`, named by doc id AND content
hash, so an update writes new files next to the old ones and the manifest switch makes them live.
Everything query-time graphs need is derivable from these files: that is what makes an incremental
update answer exactly like a fresh build.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from runtime.checkpoint import atomic_write_bytes, atomic_write_json
from sopr_rag.cards import LLMCard, build_card
from sopr_rag.experts import causal, components, entity, flow
from sopr_rag.experts.base import DocArtifacts
from sopr_rag.retrieval.lexical import tokenize
from sopr_rag.types import Procedure, Step

EmbedFn = Callable[[Sequence[str]], np.ndarray]


def doc_key(doc_id: str, content_hash: str) -> str:
    return hashlib.sha1(doc_id.encode("utf-8")).hexdigest()[:16] + "-" + content_hash[:12]


def build_artifacts(proc: Procedure, embed_fn: EmbedFn, card: LLMCard | None = None) -> DocArtifacts:
    """`card`: the SOP's LLM card (cards.llm), None for rule-only cards."""
    doc = DocArtifacts(proc=proc, card_text=build_card(proc, card).text(), entity=entity.build_part(proc),
                       causal=causal.build_part(proc, card), flow=flow.build_part(proc),
                       card=card.model_dump() if card else None)
    doc.entity["components"] = components.build_part(proc, card)
    texts = {"steps": [s.text for s in proc.steps], "entities": doc.entity["names"],
             "causal": [n["text"] for n in doc.causal["nodes"]],
             "components": [c["profile"] for c in doc.entity["components"]]}
    flat = [t for group in texts.values() for t in group]
    mat = np.asarray(embed_fn(flat), dtype=np.float32) if flat else np.zeros((0, 1), dtype=np.float32)
    start = 0
    for name, group in texts.items():
        doc.vectors[name] = mat[start:start + len(group)]
        start += len(group)
    finish_loading(doc)
    return doc


def finish_loading(doc: DocArtifacts) -> None:
    doc.step_tokens = [set(tokenize(s.text)) for s in doc.proc.steps]


def save_artifacts(doc: DocArtifacts, docs_dir: Path) -> str:
    key = doc_key(doc.proc.doc_id, doc.proc.content_hash)
    record = {"procedure": dataclasses.asdict(doc.proc), "card_text": doc.card_text, "card": doc.card,
              "entity": doc.entity, "causal": doc.causal, "flow": doc.flow}
    buf = io.BytesIO()
    np.savez(buf, **doc.vectors)
    atomic_write_bytes(docs_dir / f"{key}.npz", buf.getvalue())
    atomic_write_json(docs_dir / f"{key}.json", record, indent=None)
    return key


def load_artifacts(docs_dir: Path, key: str) -> DocArtifacts:
    record = json.loads((docs_dir / f"{key}.json").read_text(encoding="utf-8"))
    pdict = record["procedure"]
    pdict["steps"] = [Step(**s) for s in pdict["steps"]]
    with np.load(docs_dir / f"{key}.npz") as z:
        vectors = {k: z[k] for k in z.files}
    doc = DocArtifacts(proc=Procedure(**pdict), card_text=record["card_text"], entity=record["entity"],
                       causal=record["causal"], flow=record["flow"], vectors=vectors, card=record.get("card"))
    finish_loading(doc)
    return doc


def delete_artifacts(docs_dir: Path, key: str) -> None:
    for suffix in (".json", ".npz"):
        (docs_dir / f"{key}{suffix}").unlink(missing_ok=True)
