"""SOP ingestion: Markdown/plain text -> structured Procedure (rule-based, no LLM needed)."""

from sopr_rag.ingest.extract import parse_document
from sopr_rag.ingest.loader import IngestReport, list_documents, load_procedure
from sopr_rag.ingest.markdown import ParseError

__all__ = ["IngestReport", "ParseError", "list_documents", "load_procedure", "parse_document"]
