"""What is installed: every asset of every kind (models, datasets, shipped drafts) and its status.

Sits above the three registries (models, datasets, drafts), which import only `registry`: no cycle."""

from __future__ import annotations

from runtime.assets.datasets import DATASETS
from runtime.assets.drafts import DRAFTS, draft_status
from runtime.assets.models import MODELS
from runtime.assets.registry import AssetMissingError, AssetSpec, package_dir


def list_assets() -> list[AssetSpec]:
    return [*MODELS.values(), *DATASETS.values(), *DRAFTS.values()]


def asset_status() -> dict[str, str]:
    """{asset name: "ok" | reason it is unavailable} without loading anything large."""
    out: dict[str, str] = {}
    for spec in list_assets():
        if spec.kind == "draft":  # shipped in git, not a package
            out[spec.name] = draft_status(spec.name)
            continue
        try:
            package_dir(spec.module, spec.pip, "make assets-large" if spec.optional else "make setup")
            out[spec.name] = "ok"
        except AssetMissingError as err:
            out[spec.name] = str(err)
    return out
