"""Damage detection and repair for the SOPRAG index folder (used by store.py).

Every document's artifact files are recorded in the manifest with size + sha256 at write time. On
load a file that is missing, truncated, altered or unparseable is named; `SopIndex.load` refuses
such an index, `SopIndex.build` (the `index` command) rebuilds just those documents. Card indexes
(cards_bm25/, cards_dense/) that cannot be read are rebuilt from the stored card texts, an unreadable
manifest makes `index` rebuild every document, and artifact files no manifest entry points to are swept.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime.checkpoint import file_digest, verify_file
from runtime.logging import get_logger
from sopr_rag.experts.base import DocArtifacts
from sopr_rag.index.artifacts import load_artifacts

log = get_logger("sopr_rag.index")
ARTIFACT_SUFFIXES = (".json", ".npz")


class DamagedFile(Exception):
    """An index file that cannot be used; str() names it and says why."""


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest as a dict, or DamagedFile naming it (truncated JSON must not surface as a bare
    'Expecting value: line 19 column 15')."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DamagedFile(f"{path}: unreadable ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("docs"), dict):
        raise DamagedFile(f"{path}: not a SOPRAG manifest (no 'docs' mapping)")
    return data


def artifact_files(docs_dir: Path, key: str) -> dict[str, dict[str, Any]]:
    """{"json": digest, "npz": digest} of one document's freshly written artifact files."""
    return {suffix[1:]: file_digest(docs_dir / f"{key}{suffix}") for suffix in ARTIFACT_SUFFIXES}


def load_checked(docs_dir: Path, entry: dict[str, Any]) -> DocArtifacts:
    """Load one document's artifacts after checking them against the manifest's digests (when recorded)."""
    key = entry["key"]
    for kind, expected in (entry.get("files") or {}).items():
        problem = verify_file(docs_dir / f"{key}.{kind}", expected)
        if problem:
            raise DamagedFile(problem)
    try:
        return load_artifacts(docs_dir, key)
    except Exception as err:  # noqa: BLE001 - BadZipFile, JSONDecodeError, KeyError, OSError: all "damaged"
        raise DamagedFile(f"{docs_dir / key}.{{json,npz}}: cannot be loaded ({type(err).__name__}: {err})") from None


def load_docs(docs_dir: Path, entries: dict[str, dict[str, Any]]) -> tuple[dict[str, DocArtifacts], dict[str, str]]:
    """(loaded documents, {doc id: why its artifacts are damaged})."""
    docs: dict[str, DocArtifacts] = {}
    damaged: dict[str, str] = {}
    for doc_id, entry in sorted(entries.items()):
        try:
            docs[doc_id] = load_checked(docs_dir, entry)
        except DamagedFile as err:
            damaged[doc_id] = str(err)
    return docs, damaged


def load_or_none(what: str, path: Path, loader: Callable[[], Any]) -> Any:
    """`loader()`, or None (logged, naming `path`) when the folder is missing or damaged: the caller rebuilds."""
    if not path.exists():
        return None
    try:
        return loader()
    except Exception as err:  # noqa: BLE001 - faiss/bm25s/JSON errors all mean "rebuild it"
        log.warning("%s at %s is damaged (%s: %s); rebuilding it", what, path, type(err).__name__, err)
        return None


def sweep_orphans(docs_dir: Path, live_keys: set[str]) -> int:
    """Delete artifact files no manifest entry points to (left by a rebuilt or unreadable manifest)."""
    removed = 0
    if not docs_dir.is_dir():
        return 0
    for p in docs_dir.iterdir():
        if p.suffix in ARTIFACT_SUFFIXES and p.stem not in live_keys and p.is_file():
            p.unlink(missing_ok=True)
            removed += 1
    return removed
