"""Multi-agent benchmark construction over SOP corpora (writer, grounding, ambiguity, dedup agents)."""
