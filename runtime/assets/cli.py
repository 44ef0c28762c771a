"""Verbs `python -m runtime assets` (what is installed) and `python -m runtime prepare [names=[...]]`."""

from __future__ import annotations

import sys

from pydantic import Field

from runtime.assets.models import DEFAULT_MODEL, MODELS, prepare_model
from runtime.assets.registry import AssetMissingError
from runtime.assets.status import asset_status
from runtime.config import StrictModel, config_from_cli


class AssetsConfig(StrictModel):
    pass


class PrepareConfig(StrictModel):
    names: list[str] = Field(default_factory=lambda: [DEFAULT_MODEL])  # model assets to convert
    force: bool = False  # convert again even when the cache is complete
    cache_dir: str | None = None  # None: runtime.paths.cache_dir("models")


def list_main(argv: list[str] | None = None) -> int:
    config_from_cli(AssetsConfig, argv, description="every asset and whether its package is installed", example="")
    for name, status in asset_status().items():
        print(f"{name:32s} {status}")
    return 0


def prepare_main(argv: list[str] | None = None) -> int:
    cfg = config_from_cli(PrepareConfig, argv, description="convert model GGUFs into the HF cache",
                          example="names=[qwen2.5-coder-0.5b-instruct,gemma3-270m]")
    for name in cfg.names:
        if name not in MODELS:
            print(f"unknown model asset '{name}'; known: {sorted(MODELS)}", file=sys.stderr)
            return 2
        try:
            path = prepare_model(name, cache=cfg.cache_dir, force=cfg.force)
        except AssetMissingError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"{name}: {path}")
    return 0
