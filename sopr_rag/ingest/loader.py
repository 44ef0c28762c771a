"""Walk a corpus folder: every readable SOP becomes a Procedure, every bad one a reported skip.

Symlinks that lead out of the corpus folder (to /etc/passwd, another tree) are never read: they are
skipped with a reason. Each document has a budget (IngestLimits: bytes, steps, parse seconds); a
document over it is skipped with a reason instead of stalling the index for minutes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from runtime.logging import get_logger
from sopr_rag.ingest.extract import parse_document
from sopr_rag.ingest.markdown import ParseError
from sopr_rag.types import Procedure

log = get_logger("sopr_rag.ingest")
SOP_SUFFIXES = (".md", ".markdown", ".txt", ".text", ".rst")
MAX_DOC_BYTES = 2_000_000  # larger files are not SOPs (logs, dumps); skipped with a reason
LARGE_DOC_BYTES = 256_000  # documents at least this big are logged as they are indexed (progress)


@dataclass(frozen=True)
class IngestLimits:
    """Per-document budget (sopr_rag.config.IngestConfig carries the user's values)."""

    max_doc_bytes: int = MAX_DOC_BYTES
    max_steps: int = 2000  # a runbook has tens of steps; thousands means a log or a concatenation
    max_parse_seconds: float = 60.0

    @classmethod
    def of(cls, cfg: object | None) -> IngestLimits:
        if cfg is None:
            return cls()
        return cls(cfg.max_doc_bytes, cfg.max_steps, cfg.max_parse_seconds)


@dataclass
class IngestReport:
    parsed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # doc id -> reason


def list_documents(root: str | Path, skipped: dict[str, str] | None = None) -> dict[str, Path]:
    """doc id (POSIX path relative to root) -> file, for every SOP-looking file; hidden folders ignored.
    Symlinks resolving outside `root` are left out and recorded in `skipped` (doc id -> reason)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"corpus folder not found: {root}")
    real_root = root.resolve()
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(p.startswith(".") for p in rel.parts):
            continue
        if path.is_symlink() and not path.resolve().is_relative_to(real_root):
            if skipped is not None and (path.is_dir() or path.suffix.lower() in SOP_SUFFIXES):
                skipped[rel.as_posix()] = "symlink to outside the corpus folder: not followed"
            continue
        if path.is_file() and path.suffix.lower() in SOP_SUFFIXES:
            out[rel.as_posix()] = path
    return out


def read_document(path: Path, max_bytes: int = MAX_DOC_BYTES) -> str:
    size = path.stat().st_size
    if size > max_bytes:
        raise ParseError(f"file of {size} bytes is larger than the {max_bytes}-byte budget "
                         "(ingest.max_doc_bytes): not a single SOP?")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ParseError(f"not UTF-8 text ({err.reason} at byte {err.start})") from None


def load_procedure(doc_id: str, path: Path, report: IngestReport,
                   limits: IngestLimits | None = None) -> Procedure | None:
    """Parse one file; a bad or over-budget file is logged and recorded in `report`, never raised."""
    limits = limits or IngestLimits()
    t0 = time.perf_counter()
    try:
        text = read_document(path, limits.max_doc_bytes)
        if len(text) >= LARGE_DOC_BYTES:
            log.info("parsing large document %s (%.1f MB)", doc_id, len(text) / 1e6)
        proc = parse_document(doc_id, text)
        _check_budget(proc, time.perf_counter() - t0, limits)
    except (ParseError, OSError) as err:
        report.skipped[doc_id] = str(err)
        log.warning("skipping %s: %s", doc_id, err)
        return None
    report.parsed.append(doc_id)
    return proc


def _check_budget(proc: Procedure, seconds: float, limits: IngestLimits) -> None:
    """Checked before the (slower) expert and embedding stages, which grow with the number of steps."""
    if len(proc.steps) > limits.max_steps:
        raise ParseError(f"{len(proc.steps)} steps, more than the budget of {limits.max_steps} "
                         "(ingest.max_steps): not a single SOP?")
    if seconds > limits.max_parse_seconds:
        raise ParseError(f"parsing took {seconds:.0f} s, more than the budget of {limits.max_parse_seconds:g} s "
                         "(ingest.max_parse_seconds)")
