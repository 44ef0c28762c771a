"""The three SOPRAG experts. Each has build_part(proc) (index time) and score(...) (query time)."""
