"""Resumable artifacts must not resume from another config: each artifact (a file or a folder) gets a
sidecar `<name>.key.json` with the settings it was made with; reusing it under other settings, or an
artifact that predates its sidecar, is an error that names the path to move away."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runtime.checkpoint import atomic_write_json


def check_key(artifact: str | Path, key: dict[str, Any]) -> None:
    artifact = Path(artifact)
    sidecar = artifact.with_name(artifact.name + ".key.json")
    want = json.loads(json.dumps(key))  # normalise (tuples -> lists) so the comparison is exact
    exists = artifact.exists() and (artifact.is_file() or any(artifact.iterdir()))
    if sidecar.is_file():
        have = json.loads(sidecar.read_text())
        if have != want:
            diff = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
            raise ValueError(f"{artifact} was made with other settings ({', '.join(diff)}); move it (and {sidecar.name}) "
                             f"away to start over")
        return
    if exists:
        raise ValueError(f"{artifact} predates settings tracking ({sidecar.name} missing); move it away to start over")
    artifact.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(sidecar, want)
