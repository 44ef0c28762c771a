"""The persistent SOPRAG index: per-document artifacts + card BM25 + card FAISS + manifest.

    index_dir/
      manifest.json      format, doc id -> {content hash, artifact key}, skipped files, telemetry
      docs/<key>.json    parsed procedure, card text, entity/causal/flow graph parts
      docs/<key>.npz     step / entity / causal-node embeddings
      cards_bm25/        BM25 over card texts (rebuilt from stored card texts: BM25 statistics are
                         corpus-global; this costs milliseconds and re-parses/re-embeds nothing)
      cards_dense/       FAISS inner-product index over card embeddings (add/remove by doc id)

Updating: only added/changed files are parsed and embedded (when the code that builds artifacts itself
changed, its fingerprint in the manifest differs and every document is rebuilt), removed ones are dropped from FAISS and
their artifacts deleted; the query-time graphs are assembled from per-document parts, so there are no
stale nodes. The manifest is written last: a crash mid-update leaves the previous index readable
(dense ids are reconciled with the manifest on load).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.checkpoint import atomic_write_json
from runtime.logging import get_logger, progress
from sopr_rag.experts.base import DocArtifacts
from sopr_rag.index.artifacts import (
    EmbedFn,
    build_artifacts,
    delete_artifacts,
    doc_key,
    load_artifacts,
    save_artifacts,
)
from sopr_rag.index.telemetry import Telemetry
from sopr_rag.ingest.extract import content_hash
from sopr_rag.ingest.loader import IngestReport, list_documents, load_procedure, read_document
from sopr_rag.ingest.markdown import ParseError
from sopr_rag.retrieval.dense import DenseIndex
from sopr_rag.retrieval.lexical import BM25Index
from sopr_rag.types import Procedure

log = get_logger("sopr_rag.index")
FORMAT_VERSION = 1
_PACKAGE = Path(__file__).resolve().parent.parent
# Sources whose behaviour is baked into per-document artifacts: editing one invalidates them.
_ARTIFACT_SOURCES = ("ingest/*.py", "experts/*.py", "cards.py", "index/artifacts.py")


def code_fingerprint() -> str:
    """Hash of the parsing / card / expert code, so an index built by older code is never reused silently."""
    h = hashlib.sha256()
    for pattern in _ARTIFACT_SOURCES:
        for f in sorted(_PACKAGE.glob(pattern)):
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


class SopIndexError(FileNotFoundError):
    """The index folder is missing, from another format, or inconsistent."""


@dataclass
class UpdateReport:
    added: list[str]
    changed: list[str]
    removed: list[str]
    skipped: dict[str, str]
    telemetry: dict


def _default_embedder() -> EmbedFn:
    from sopr_rag.retrieval.embedder import Embedder

    return Embedder()


class SopIndex:
    def __init__(self, index_dir: Path, docs: dict[str, DocArtifacts], bm25: BM25Index, dense: DenseIndex,
                 manifest: dict, embed_fn: EmbedFn):
        self.index_dir = Path(index_dir)
        self.docs = docs
        self.bm25 = bm25
        self.dense = dense
        self.manifest = manifest
        self.embed_fn = embed_fn
        self._retriever = None

    @property
    def procedures(self) -> dict[str, Procedure]:
        return {d: a.proc for d, a in self.docs.items()}

    def __len__(self) -> int:
        return len(self.docs)

    def search(self, query: str, top_k: int = 10):
        """Full SOPRAG search with default settings (a `SearchResult`); see pipeline.SopragRetriever."""
        if self._retriever is None:
            from sopr_rag.pipeline import SopragRetriever

            self._retriever = SopragRetriever(self)
        return self._retriever.search(query, top_k)

    # ------------------------------------------------------------------ load
    @classmethod
    def load(cls, index_dir: str | Path, embed_fn: EmbedFn | None = None) -> SopIndex:
        index_dir = Path(index_dir)
        mpath = index_dir / "manifest.json"
        if not mpath.is_file():
            raise SopIndexError(f"no SOPRAG index at {index_dir} (manifest.json missing); run `python -m sopr_rag index`")
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT_VERSION:
            raise SopIndexError(f"index at {index_dir} has format {manifest.get('format')}, expected {FORMAT_VERSION}")
        if manifest.get("code") != code_fingerprint():
            log.warning("index %s was built by other parsing/expert code; run `python -m sopr_rag index` "
                        "on its corpus to rebuild it", index_dir)
        embed_fn = embed_fn or _default_embedder()
        docs_dir = index_dir / "docs"
        docs = {d: load_artifacts(docs_dir, e["key"]) for d, e in sorted(manifest["docs"].items())}
        dense = DenseIndex.load(index_dir / "cards_dense", embedder=embed_fn) if (index_dir / "cards_dense").exists() \
            else DenseIndex(embed_fn)
        if set(dense.ids) != set(docs):  # crash between dense save and manifest write: reconcile
            dense.remove([i for i in dense.ids if i not in docs])
            missing = sorted(d for d in docs if d not in dense)
            dense.add(missing, [docs[d].card_text for d in missing])
        bm25 = BM25Index.load(index_dir / "cards_bm25") if (index_dir / "cards_bm25").exists() else BM25Index()
        if sorted(bm25.ids) != sorted(docs):
            bm25 = _build_bm25(docs)
        return cls(index_dir, docs, bm25, dense, manifest, embed_fn)

    # ------------------------------------------------------------------ build / update
    @classmethod
    def build(cls, corpus_dir: str | Path, index_dir: str | Path, embed_fn: EmbedFn | None = None,
              extractor: Any = None) -> tuple[SopIndex, UpdateReport]:
        """Create or incrementally update `index_dir` from `corpus_dir` (extractor: ingest.llm_extract)."""
        index_dir = Path(index_dir)
        embed_fn = embed_fn or _default_embedder()
        tel = Telemetry()
        fingerprint = code_fingerprint()
        manifest_path = index_dir / "manifest.json"
        reuse = manifest_path.is_file() and json.loads(manifest_path.read_text()).get("code") == fingerprint
        if manifest_path.is_file() and not reuse:
            log.info("index %s was built by other parsing/expert code: rebuilding every document", index_dir)
        if reuse:
            index = cls.load(index_dir, embed_fn)
        else:
            index = cls(index_dir, {}, BM25Index(), DenseIndex(embed_fn),
                        {"format": FORMAT_VERSION, "docs": {}, "skipped": {}}, embed_fn)
        with tel.stage("scan"):
            files = list_documents(corpus_dir)
            hashes = {}
            skipped: dict[str, str] = {}
            for doc_id, path in files.items():
                try:
                    hashes[doc_id] = content_hash(read_document(path))
                except (ParseError, OSError) as err:
                    skipped[doc_id] = str(err)
        old = index.manifest["docs"]
        removed = sorted(d for d in old if d not in hashes)
        changed = sorted(d for d in hashes if d in old and old[d]["hash"] != hashes[d])
        added = sorted(d for d in hashes if d not in old)
        tel.documents_seen, tel.unchanged = len(files), len(hashes) - len(changed) - len(added)
        tel.added, tel.changed, tel.removed = len(added), len(changed), len(removed)
        stale_keys = [old[d]["key"] for d in removed + changed]
        report = IngestReport()
        docs_dir = index_dir / "docs"
        new_docs = dict(index.docs)
        for d in removed + changed:
            new_docs.pop(d, None)
        for doc_id in progress(added + changed, desc="indexing SOPs"):
            with tel.stage("parse"):
                proc = load_procedure(doc_id, files[doc_id], report)
            if proc is None:
                continue
            if extractor is not None:
                with tel.stage("llm_extract"):
                    extractor.extract(proc)
            with tel.stage("experts+embed"):
                art = build_artifacts(proc, embed_fn)
                tel.texts_embedded += sum(len(v) for v in art.vectors.values()) + 1
            with tel.stage("write"):
                save_artifacts(art, docs_dir)
            new_docs[doc_id] = art
        skipped.update(report.skipped)
        tel.skipped = len(skipped)
        if extractor is not None:
            tel.llm_calls, tel.llm_tokens = extractor.stats["llm_calls"], extractor.stats["llm_tokens"]
        # What the index now holds: a new file that failed to parse was never added; a changed one
        # that now fails to parse has been removed.
        removed = sorted(removed + [d for d in changed if d not in new_docs])
        added, changed = [d for d in added if d in new_docs], [d for d in changed if d in new_docs]
        tel.added, tel.changed, tel.removed = len(added), len(changed), len(removed)
        dirty = bool(added or changed or removed) or not reuse or not (index_dir / "cards_bm25").is_dir() \
            or not (index_dir / "cards_dense").is_dir()
        if dirty:  # an unchanged corpus rewrites nothing but the manifest's telemetry
            with tel.stage("cards_dense"):
                index.dense.remove(removed + changed)
                fresh = sorted(added + changed)
                index.dense.add(fresh, [new_docs[d].card_text for d in fresh])
                index.dense.save(index_dir / "cards_dense")
            with tel.stage("cards_bm25"):
                index.bm25 = _build_bm25(new_docs)
                index.bm25.save(index_dir / "cards_bm25")
        index.docs = dict(sorted(new_docs.items()))
        index.manifest = {
            "format": FORMAT_VERSION, "code": fingerprint, "corpus": str(Path(corpus_dir).resolve()),
            "docs": {d: {"hash": a.proc.content_hash, "key": doc_key(d, a.proc.content_hash)}
                     for d, a in index.docs.items()},
            "skipped": skipped, "telemetry": tel.to_dict(),
        }
        atomic_write_json(index_dir / "manifest.json", index.manifest)
        live = {e["key"] for e in index.manifest["docs"].values()}
        for key in stale_keys:
            if key not in live:
                delete_artifacts(docs_dir, key)
        index._retriever = None
        log.info("index %s: +%d ~%d -%d (=%d unchanged, %d skipped) in %.1fs", index_dir, len(added), len(changed),
                 len(removed), tel.unchanged, len(skipped), sum(tel.seconds.values()))
        return index, UpdateReport(added, changed, removed, skipped, tel.to_dict())


def _build_bm25(docs: dict[str, DocArtifacts]) -> BM25Index:
    ids = sorted(docs)
    return BM25Index().build(ids, [docs[d].card_text for d in ids])
