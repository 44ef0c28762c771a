"""Trained draft models shipped in git (small safetensors exports with SHA256SUMS and a model card).

    from runtime.assets.drafts import draft_dir
    draft_dir("smollm2-135m-eagle3")   # verified folder: config.json, model.safetensors, README.md

A draft is an EAGLE-3 export (vLLM / SGLang `LlamaForCausalLMEagle3` format) for one target asset;
`make speculative-bundle` rebuilds it. Files are checked against SHA256SUMS before a path is handed out, so a
damaged checkout fails here, naming the file, instead of as odd acceptance numbers later.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from runtime.assets.registry import AssetCorruptError, AssetMissingError
from runtime.paths import repo_root


@dataclass(frozen=True)
class DraftSpec:
    name: str
    target: str  # the target model asset it drafts for
    folder: str  # relative to the repository root
    description: str
    kind: str = "draft"
    optional: bool = False

    @property
    def path(self) -> Path:
        return repo_root() / self.folder


DRAFTS: dict[str, DraftSpec] = {
    s.name: s
    for s in [
        DraftSpec("smollm2-135m-eagle3", "smollm2-135m-instruct", "drafts/smollm2-135m-eagle3",
                  "EAGLE-3 draft for SmolLM2-135M-Instruct (self-distilled, bf16, `make speculative-bundle`)"),
        DraftSpec("qwen2.5-coder-0.5b-eagle3", "qwen2.5-coder-0.5b-instruct", "drafts/qwen2.5-coder-0.5b-eagle3",
                  "EAGLE-3 draft for Qwen2.5-Coder-0.5B-Instruct on code (self-distilled on ShareGPT code, MLP 1024, "
                  "4k draft vocab, bf16, `make speculative-bundle-qwen-coder`)"),
    ]
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def draft_dir(name: str, *, verify: bool = True) -> Path:
    """The folder of shipped draft `name`, its files verified against SHA256SUMS."""
    if name not in DRAFTS:
        raise KeyError(f"unknown draft '{name}'; known: {sorted(DRAFTS)}")
    path = DRAFTS[name].path
    sums = path / "SHA256SUMS"
    if not sums.is_file():
        raise AssetMissingError(f"draft '{name}' is not in this checkout ({sums} missing); `make speculative-bundle` "
                                "trains and ships it")
    if verify:
        for line in sums.read_text().splitlines():
            digest, _, fname = line.partition("  ")
            f = path / fname
            if not f.is_file() or _sha256(f) != digest:
                raise AssetCorruptError(f"{f} does not match its sha256 in {sums} (damaged or changed): restore "
                                        "it from git or rebuild with `make speculative-bundle`")
    return path


def draft_status(name: str) -> str:
    try:
        draft_dir(name)
        return "ok"
    except (AssetMissingError, AssetCorruptError) as err:
        return str(err)
