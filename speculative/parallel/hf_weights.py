"""Read HF checkpoint tensors by name, whole or as a row/column slice, without loading the whole model.

Used by the TP target (each rank reads only its shard) and the offline backend (embedding + head only).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open


class HFWeights:
    """The safetensors files of one HF model folder (single file or sharded with an index)."""

    def __init__(self, model_dir: str | Path):
        self.dir = Path(model_dir)
        index = self.dir / "model.safetensors.index.json"
        if index.is_file():
            self.files = {k: self.dir / f for k, f in json.loads(index.read_text())["weight_map"].items()}
        elif (self.dir / "model.safetensors").is_file():
            single = self.dir / "model.safetensors"
            with safe_open(str(single), "pt") as fh:
                self.files = {k: single for k in fh.keys()}
        else:
            raise FileNotFoundError(f"no model.safetensors(.index.json) in {self.dir}")

    def __contains__(self, name: str) -> bool:
        return name in self.files

    def get(self, name: str, *, dim: int | None = None, part: int = 0, parts: int = 1) -> torch.Tensor:
        """Tensor `name`, or its `part`-th of `parts` equal slices along `dim` (a TP shard)."""
        if name not in self.files:
            raise KeyError(f"tensor '{name}' not in checkpoint {self.dir}")
        with safe_open(str(self.files[name]), "pt") as fh:
            if dim is None or parts == 1:
                return fh.get_tensor(name)
            sl = fh.get_slice(name)
            size = sl.get_shape()[dim]
            if size % parts:
                raise ValueError(f"'{name}' dim {dim} = {size} is not divisible by {parts} tensor-parallel ranks")
            step = size // parts
            index = [slice(None)] * len(sl.get_shape())
            index[dim] = slice(part * step, (part + 1) * step)
            return sl[tuple(index)]

    def lm_head(self, tied: bool) -> torch.Tensor:
        """[V, H] output head (the input embedding when tied)."""
        name = "lm_head.weight" if not tied and "lm_head.weight" in self else "model.embed_tokens.weight"
        return self.get(name)
