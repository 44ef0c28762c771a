"""SOPRAG: retrieval over standard operating procedures with Procedure Cards and graph experts."""
