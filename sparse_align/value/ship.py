"""A small trained value head shipped inside the package (for `make demo`): the head file, its config,
a sha256 and a model card. `export-head` writes it from a trained run; `load_shipped` checks the sha256
before loading, so a corrupt or hand-edited head is refused instead of silently steering badly."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from runtime.checkpoint import atomic_write_json, atomic_write_text
from sparse_align.value.model import CONFIG_FILE, HEAD_FILE, ValueModel

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SHIPPED = ASSETS / "smollm2_vader_head"  # the demo's head (SmolLM2-135M-Instruct, VADER)
# one shipped head per backbone asset: `eval.value_head: shipped` picks the one of the configured backbone
SHIPPED_BY_BACKBONE = {"smollm2-135m-instruct": SHIPPED, "gemma3-270m": ASSETS / "gemma3_270m_vader_head"}
MAX_BYTES = 5 * 2**20


def shipped_dir(backbone: str) -> Path:
    if backbone not in SHIPPED_BY_BACKBONE:
        raise ValueError(f"no shipped value head for backbone '{backbone}'; known: {sorted(SHIPPED_BY_BACKBONE)}")
    return SHIPPED_BY_BACKBONE[backbone]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_head(src: str | Path, dest: str | Path, card: dict[str, Any]) -> Path:
    """Copy a head-only value model (no LoRA) with sha256 and a model card (`card`: training facts)."""
    src, dest = Path(src), Path(dest)
    cfg = json.loads((src / CONFIG_FILE).read_text())
    if cfg.get("lora_rank", 0):
        raise ValueError("only head-only value models ship (a LoRA backbone is not a few MB)")
    if (src / HEAD_FILE).stat().st_size > MAX_BYTES:
        raise ValueError(f"{src / HEAD_FILE} is over {MAX_BYTES} bytes")
    dest.mkdir(parents=True, exist_ok=True)
    for name in (HEAD_FILE, CONFIG_FILE):
        shutil.copyfile(src / name, dest / name)
    atomic_write_json(dest / "card.json", {**card, "sha256": sha256(dest / HEAD_FILE), "backbone": cfg["backbone"]})
    lines = [f"# Value head: {cfg['backbone']} + MLP({cfg['head_hidden']}), VADER teacher", ""]
    lines += [f"- {k}: {v}" for k, v in card.items()]
    atomic_write_text(dest / "MODEL_CARD.md", "\n".join(lines) + "\n")
    return dest


def load_shipped(backbone: Any, folder: str | Path = SHIPPED) -> ValueModel | None:
    """The shipped head on `backbone`, or None when none is shipped; raises on a sha256 mismatch."""
    folder = Path(folder)
    if not (folder / "card.json").is_file():
        return None
    want = json.loads((folder / "card.json").read_text())["sha256"]
    if sha256(folder / HEAD_FILE) != want:
        raise ValueError(f"{folder / HEAD_FILE}: sha256 differs from card.json; re-export it (export-head)")
    return ValueModel.load(folder, backbone=backbone)
