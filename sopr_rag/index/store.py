"""The persistent SOPRAG index: per-document artifacts + card BM25 + card FAISS + manifest.

    index_dir/
      manifest.json      format, doc id -> {content hash, artifact key}, skipped files, telemetry
      docs/<key>.json    parsed procedure, card text, entity/causal/flow graph parts
      docs/<key>.npz     step / entity / causal-node embeddings
      cards_bm25/        BM25 over card texts (rebuilt from stored card texts: BM25 statistics are
                         corpus-global; this costs milliseconds and re-parses/re-embeds nothing)
      cards_dense/       FAISS inner-product index over card embeddings (add/remove by doc id)
      glossary.{json,npz} the component glossary (cards.glossary: true), corpus-level (index/glossary_part.py)

Updating: only added/changed files are parsed and embedded (when the code that builds artifacts itself
changed, its fingerprint in the manifest differs and every document is rebuilt), removed ones are dropped from FAISS and
their artifacts deleted; the query-time graphs are assembled from per-document parts, so there are no
stale nodes. The manifest is written last: a crash mid-update leaves the previous index readable
(dense ids are reconciled with the manifest on load).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.checkpoint import atomic_write_json
from runtime.logging import get_logger, progress
from sopr_rag.experts.base import DocArtifacts
from sopr_rag.experts.components import Glossary
from sopr_rag.index.artifacts import (
    EmbedFn,
    build_artifacts,
    delete_artifacts,
    doc_key,
    save_artifacts,
)
from sopr_rag.index.glossary_part import load_glossary, update_glossary
from sopr_rag.index.repair import DamagedFile, artifact_files, load_docs, load_or_none, read_manifest, sweep_orphans
from sopr_rag.index.telemetry import Telemetry
from sopr_rag.ingest.extract import content_hash
from sopr_rag.ingest.loader import (
    SOP_SUFFIXES,
    IngestLimits,
    IngestReport,
    list_documents,
    load_procedure,
    read_document,
)
from sopr_rag.ingest.markdown import ParseError
from sopr_rag.retrieval.dense import DenseIndex
from sopr_rag.retrieval.embedder import Embedder
from sopr_rag.retrieval.lexical import BM25Index
from sopr_rag.types import Procedure

log = get_logger("sopr_rag.index")
FORMAT_VERSION = 1
_PACKAGE = Path(__file__).resolve().parent.parent
# Sources whose behaviour is baked into per-document artifacts: editing one invalidates them.
_ARTIFACT_SOURCES = ("ingest/*.py", "experts/*.py", "cards/*.py", "index/artifacts.py", "retrieval/identifiers.py")


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
    repaired: dict[str, str] = field(default_factory=dict)  # doc id or index part -> what was damaged


def _default_embedder() -> EmbedFn:
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
        self.damaged: dict[str, str] = {}  # what load(repair=True) found unusable: doc id / part -> reason
        self.glossary: Glossary | None = None  # the component glossary, when built with one

    @property
    def procedures(self) -> dict[str, Procedure]:
        return {d: a.proc for d, a in self.docs.items()}

    def __len__(self) -> int:
        return len(self.docs)

    # ------------------------------------------------------------------ load
    @classmethod
    def load(cls, index_dir: str | Path, embed_fn: EmbedFn | None = None, *, repair: bool = False) -> SopIndex:
        """Open an index. A damaged document artifact raises SopIndexError naming the file, unless `repair`
        (what `build` uses): then it is left out and listed in `index.damaged` for rebuilding. Damaged card
        indexes are rebuilt in memory from the stored card texts either way."""
        index_dir = Path(index_dir)
        mpath = index_dir / "manifest.json"
        if not mpath.is_file():
            raise SopIndexError(f"no SOPRAG index at {index_dir} (manifest.json missing); run `python -m sopr_rag index`")
        try:
            manifest = read_manifest(mpath)
        except DamagedFile as err:
            raise SopIndexError(f"{err}; re-run `python -m sopr_rag index CORPUS --out {index_dir}` to rebuild it") \
                from None
        if manifest.get("format") != FORMAT_VERSION:
            raise SopIndexError(f"index at {index_dir} has format {manifest.get('format')}, expected {FORMAT_VERSION}")
        if manifest.get("code") != code_fingerprint():
            log.warning("index %s was built by other parsing/expert code; run `python -m sopr_rag index` "
                        "on its corpus to rebuild it", index_dir)
        embed_fn = embed_fn or _default_embedder()
        docs, damaged = load_docs(index_dir / "docs", manifest["docs"])
        try:
            glossary = load_glossary(index_dir, manifest.get("glossary"))
        except DamagedFile as err:
            glossary, damaged["glossary"] = None, str(err)
        if damaged and not repair:
            raise SopIndexError(f"index at {index_dir} has damaged files: {'; '.join(damaged.values())}; re-run "
                                f"`python -m sopr_rag index CORPUS --out {index_dir}` to rebuild just those documents")
        dense = load_or_none("card dense index", index_dir / "cards_dense",
                             lambda: DenseIndex.load(index_dir / "cards_dense", embedder=embed_fn))
        if dense is None:
            if (index_dir / "cards_dense").exists():
                damaged["cards_dense"] = f"{index_dir / 'cards_dense'} could not be read"
            dense = DenseIndex(embed_fn)
        if set(dense.ids) != set(docs):  # crash between dense save and manifest write: reconcile
            dense.remove([i for i in dense.ids if i not in docs])
            missing = sorted(d for d in docs if d not in dense)
            dense.add(missing, [docs[d].card_text for d in missing])
        bm25 = load_or_none("card BM25 index", index_dir / "cards_bm25",
                            lambda: BM25Index.load(index_dir / "cards_bm25"))
        if bm25 is None:
            if (index_dir / "cards_bm25").exists():
                damaged["cards_bm25"] = f"{index_dir / 'cards_bm25'} could not be read"
            bm25 = BM25Index()
        if sorted(bm25.ids) != sorted(docs):
            bm25 = _build_bm25(docs)
        index = cls(index_dir, docs, bm25, dense, manifest, embed_fn)
        index.damaged = damaged
        index.glossary = glossary
        if glossary is not None:
            glossary.attach(docs)
        return index

    # ------------------------------------------------------------------ build / update
    @classmethod
    def build(cls, corpus_dir: str | Path, index_dir: str | Path, embed_fn: EmbedFn | None = None,
              extractor: Any = None, card_builder: Any = None, limits: IngestLimits | None = None,
              glossary_builder: Any = None) -> tuple[SopIndex, UpdateReport]:
        """Create or incrementally update `index_dir` from `corpus_dir` (extractor: ingest.llm_extract,
        card_builder: cards.llm.CardBuilder for LLM Procedure Cards, None for rule-built cards only;
        limits: the per-document budget; glossary_builder: cards.glossary.GlossaryBuilder for the component
        glossary, None for none). Damaged artifacts found on the way are rebuilt (report.repaired)."""
        index_dir = Path(index_dir)
        limits = limits or IngestLimits()
        embed_fn = embed_fn or _default_embedder()
        tel = Telemetry()
        fingerprint = code_fingerprint()
        manifest_path = index_dir / "manifest.json"
        cards = card_builder.identity if card_builder is not None else "rules"
        old_manifest = _manifest_or_empty(manifest_path)
        # artifacts built by other code, or with other cards (rules vs an LLM), are rebuilt (LLM cards are cached)
        reuse = old_manifest.get("code") == fingerprint and old_manifest.get("cards", "rules") == cards
        if manifest_path.is_file() and not reuse:
            log.info("index %s was built by other parsing/expert code or cards: rebuilding every document", index_dir)
        if reuse:
            index = cls.load(index_dir, embed_fn, repair=True)  # damaged documents are rebuilt below
            for what, why in index.damaged.items():
                log.warning("index %s: repairing %s (%s)", index_dir, what, why)
        else:
            index = cls(index_dir, {}, BM25Index(), DenseIndex(embed_fn),
                        {"format": FORMAT_VERSION, "docs": {}, "skipped": {}}, embed_fn)
        with tel.stage("scan"):
            skipped: dict[str, str] = {}
            files = list_documents(corpus_dir, skipped=skipped)
            if not files:  # refuse before touching the index: an empty index is never what was meant
                raise SopIndexError(f"no SOP files ({', '.join(SOP_SUFFIXES)}) under {corpus_dir}"
                                    + (f"; skipped: {skipped}" if skipped else ""))
            hashes = {}
            for doc_id, path in files.items():
                try:
                    hashes[doc_id] = content_hash(read_document(path, limits.max_doc_bytes))
                except (ParseError, OSError) as err:
                    skipped[doc_id] = str(err)
        old = index.manifest["docs"]
        removed = sorted(d for d in old if d not in hashes)
        changed = sorted(d for d in hashes if d in old and (old[d]["hash"] != hashes[d] or d in index.damaged))
        added = sorted(d for d in hashes if d not in old)
        tel.documents_seen, tel.unchanged = len(files), len(hashes) - len(changed) - len(added)
        tel.added, tel.changed, tel.removed = len(added), len(changed), len(removed)
        stale_keys = [old[d]["key"] for d in removed + changed]
        report = IngestReport()
        docs_dir = index_dir / "docs"
        new_docs = dict(index.docs)
        for d in removed + changed:
            new_docs.pop(d, None)
        procs: dict[str, Procedure] = {}
        for doc_id in progress(added + changed, desc="parsing SOPs"):
            with tel.stage("parse"):
                proc = load_procedure(doc_id, files[doc_id], report, limits)
            if proc is None:
                continue
            if extractor is not None:
                with tel.stage("llm_extract"):
                    extractor.extract(proc)
            procs[doc_id] = proc
        llm_cards: dict = {}
        if card_builder is not None:  # all changed documents at once: the backend batches the prompts
            with tel.stage("llm_cards"):
                llm_cards = card_builder.build(list(procs.values()))
            tel.add_llm(card_builder.stats)
        for doc_id, proc in progress(procs.items(), desc="indexing SOPs"):
            with tel.stage("experts+embed"):
                art = build_artifacts(proc, embed_fn, llm_cards.get(doc_id))
                tel.texts_embedded += sum(len(v) for v in art.vectors.values()) + 1
            with tel.stage("write"):
                save_artifacts(art, docs_dir)
            new_docs[doc_id] = art
        skipped.update(report.skipped)
        tel.skipped = len(skipped)
        if extractor is not None:
            tel.llm_calls += extractor.stats["llm_calls"]
            tel.llm_tokens += extractor.stats["llm_tokens"]
        # What the index now holds: a new file that failed to parse was never added; a changed one
        # that now fails to parse has been removed.
        removed = sorted(removed + [d for d in changed if d not in new_docs])
        added, changed = [d for d in added if d in new_docs], [d for d in changed if d in new_docs]
        tel.added, tel.changed, tel.removed = len(added), len(changed), len(removed)
        dirty = bool(added or changed or removed) or not reuse or not (index_dir / "cards_bm25").is_dir() \
            or not (index_dir / "cards_dense").is_dir() or bool(index.damaged)
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
        # corpus-level, so rebuilt from every document whenever the corpus changed (its LLM answers are cached)
        index.glossary, glossary_meta = update_glossary(
            index_dir, index.docs, glossary_builder, index.glossary, old_manifest.get("glossary") if reuse else None,
            dirty, embed_fn, tel)
        (index.glossary or Glossary()).attach(index.docs)  # an empty one takes back what a dropped one gave
        index.manifest = {
            "format": FORMAT_VERSION, "code": fingerprint, "cards": cards, "corpus": str(Path(corpus_dir).resolve()),
            "docs": {d: _doc_entry(d, a, old, docs_dir, rebuilt=d in procs) for d, a in index.docs.items()},
            "skipped": skipped, "telemetry": tel.to_dict(), **({"glossary": glossary_meta} if glossary_meta else {}),
        }
        atomic_write_json(index_dir / "manifest.json", index.manifest)
        live = {e["key"] for e in index.manifest["docs"].values()}
        for key in stale_keys:
            if key not in live:
                delete_artifacts(docs_dir, key)
        sweep_orphans(docs_dir, live)  # files of a manifest that could not be read, or of a crashed update
        log.info("index %s: +%d ~%d -%d (=%d unchanged, %d skipped) in %.1fs", index_dir, len(added), len(changed),
                 len(removed), tel.unchanged, len(skipped), sum(tel.seconds.values()))
        repaired = dict(index.damaged)
        index.damaged = {}
        return index, UpdateReport(added, changed, removed, skipped, tel.to_dict(), repaired)


def _manifest_or_empty(path: Path) -> dict:
    """The previous manifest for an update; an unreadable one means rebuilding every document."""
    if not path.is_file():
        return {}
    try:
        return read_manifest(path)
    except DamagedFile as err:
        log.warning("%s; rebuilding every document", err)
        return {}


def _doc_entry(doc_id: str, art: DocArtifacts, old: dict, docs_dir: Path, *, rebuilt: bool) -> dict:
    """Manifest entry with the artifact files' size + sha256 (hashed once, when the files are written)."""
    key = doc_key(doc_id, art.proc.content_hash)
    prev = old.get(doc_id) or {}
    files = prev.get("files") if not rebuilt and prev.get("key") == key and prev.get("files") else None
    return {"hash": art.proc.content_hash, "key": key, "files": files or artifact_files(docs_dir, key)}


def _build_bm25(docs: dict[str, DocArtifacts]) -> BM25Index:
    ids = sorted(docs)
    return BM25Index().build(ids, [docs[d].card_text for d in ids])
