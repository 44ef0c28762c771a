"""Walk a corpus folder: every readable SOP becomes a Procedure, every bad one a reported skip."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from runtime.logging import get_logger
from sopr_rag.ingest.extract import content_hash, parse_document
from sopr_rag.ingest.markdown import ParseError
from sopr_rag.types import Procedure

log = get_logger("sopr_rag.ingest")
SOP_SUFFIXES = (".md", ".markdown", ".txt", ".text", ".rst")
MAX_DOC_BYTES = 2_000_000  # larger files are not SOPs (logs, dumps); skipped with a reason


@dataclass
class IngestReport:
    parsed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # doc id -> reason


def list_documents(root: str | Path) -> dict[str, Path]:
    """doc id (POSIX path relative to root) -> file, for every SOP-looking file; hidden folders ignored."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"corpus folder not found: {root}")
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and path.suffix.lower() in SOP_SUFFIXES and not any(p.startswith(".") for p in rel.parts):
            out[rel.as_posix()] = path
    return out


def read_document(path: Path) -> str:
    if path.stat().st_size > MAX_DOC_BYTES:
        raise ParseError(f"file larger than {MAX_DOC_BYTES} bytes")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ParseError(f"not UTF-8 text ({err.reason} at byte {err.start})") from None


def file_hash(path: Path) -> str:
    """Content hash used by the manifest (same function as Procedure.content_hash)."""
    try:
        return content_hash(read_document(path))
    except ParseError:
        return "unreadable:" + str(path.stat().st_size)


def load_procedure(doc_id: str, path: Path, report: IngestReport) -> Procedure | None:
    """Parse one file; a bad file is logged and recorded in `report`, never raised."""
    try:
        proc = parse_document(doc_id, read_document(path))
    except (ParseError, OSError) as err:
        report.skipped[doc_id] = str(err)
        log.warning("skipping %s: %s", doc_id, err)
        return None
    report.parsed.append(doc_id)
    return proc
