"""Offline target hidden states: prepare once (prepare.py, `python -m speculative prepare`), train from shards (backend.py).

Pipeline order: config.py -> shards.py (format, manifest, hashes) -> prepare.py (writer, resumable)
-> backend.py (a TargetBackend that reads shards and re-applies the target head on the draft vocab).
"""
