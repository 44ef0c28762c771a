"""The component glossary as an index part (store.py): glossary.json + glossary.npz beside the manifest.

The glossary is corpus-level (a component's description uses several of its runbooks), so it is not
inside any document's artifacts: it is rebuilt from ALL current documents whenever the corpus changed
(cached LLM answers make that cheap; unchanged documents' names are reused from the previous glossary),
written before the manifest, which records its identity (prompt version, model) and file digests.
Loaded, it is handed to each SOP (Glossary.attach), from which the component graph is assembled.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from runtime.checkpoint import atomic_write_bytes, atomic_write_json, file_digest, verify_file
from sopr_rag.experts.base import DocArtifacts
from sopr_rag.experts.components import Glossary
from sopr_rag.index.repair import DamagedFile
from sopr_rag.index.telemetry import Telemetry

FILES = {"json": "glossary.json", "npz": "glossary.npz"}


def save_glossary(glossary: Glossary, index_dir: Path) -> dict[str, dict]:
    """Write both files; their digests for the manifest."""
    buf = io.BytesIO()
    np.savez(buf, profiles=glossary.vectors if glossary.vectors is not None else np.zeros((0, 1), np.float32))
    atomic_write_bytes(index_dir / FILES["npz"], buf.getvalue())
    atomic_write_json(index_dir / FILES["json"], {"entries": glossary.entries, "docs": glossary.docs}, indent=None)
    return {kind: file_digest(index_dir / name) for kind, name in FILES.items()}


def load_glossary(index_dir: Path, meta: dict[str, Any] | None) -> Glossary | None:
    """The glossary the manifest records (None: built without one); DamagedFile when it cannot be used."""
    if not meta:
        return None
    for kind, expected in (meta.get("files") or {}).items():
        problem = verify_file(index_dir / FILES[kind], expected)
        if problem:
            raise DamagedFile(problem)
    try:
        record = json.loads((index_dir / FILES["json"]).read_text(encoding="utf-8"))
        with np.load(index_dir / FILES["npz"]) as z:
            vectors = z["profiles"]
        return Glossary(entries=record["entries"], vectors=vectors, docs=record["docs"])
    except Exception as err:  # noqa: BLE001 - JSON, zip, key errors: all "damaged"
        raise DamagedFile(f"{index_dir / FILES['json']}: cannot be loaded ({type(err).__name__}: {err})") from None


def remove_glossary(index_dir: Path) -> None:
    for name in FILES.values():
        (index_dir / name).unlink(missing_ok=True)


def summary(glossary: Glossary) -> dict[str, int]:
    """Counts for the manifest: components, and how each SOP's component was named."""
    by = [rec.get("by") for rec in glossary.docs.values()]
    return {"components": len(glossary.entries), "described": sum(bool(e["function"]) for e in glossary.entries),
            "named_by_llm": by.count("llm"), "named_by_rule": by.count("rule"),
            "named_by_knowledge": by.count("knowledge"), "unnamed": by.count(None)}


def update_glossary(index_dir: Path, docs: dict[str, DocArtifacts], builder: Any, current: Glossary | None,
                    old_meta: dict | None, changed: bool, embed_fn: Any, tel: Telemetry) -> tuple[Glossary | None, dict | None]:
    """(glossary, manifest entry) after an update; rebuilt when the corpus or the builder's identity changed."""
    if builder is None:
        remove_glossary(index_dir)
        return None, None
    same = bool(old_meta) and old_meta.get("identity") == builder.identity and current is not None
    if same and not changed:
        return current, old_meta
    with tel.stage("glossary"):
        glossary = builder.build({d: a.proc for d, a in docs.items()}, current if same else None)
        profiles = [e["profile"] for e in glossary.entries]
        glossary.vectors = np.asarray(embed_fn(profiles), dtype=np.float32) if profiles \
            else np.zeros((0, 1), dtype=np.float32)
        tel.texts_embedded += len(profiles)
        files = save_glossary(glossary, index_dir)
    tel.add_glossary(builder.stats)
    return glossary, {"identity": builder.identity, "files": files, **summary(glossary)}
