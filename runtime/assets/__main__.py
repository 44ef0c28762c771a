"""`python -m runtime.assets [list|prepare [NAME ...] [--force] [--cache-dir DIR]]`."""

from __future__ import annotations

import argparse
import sys

from runtime.assets import DEFAULT_MODEL, MODELS, asset_status, prepare_model
from runtime.assets.registry import AssetMissingError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m runtime.assets")
    sub = ap.add_subparsers(dest="cmd")
    sub.add_parser("list", help="show every asset and whether its package is installed")
    pp = sub.add_parser("prepare", help="convert model GGUFs into the HF cache (default: the default model)")
    pp.add_argument("names", nargs="*", default=[DEFAULT_MODEL])
    pp.add_argument("--force", action="store_true")
    pp.add_argument("--cache-dir", default=None)
    args = ap.parse_args(argv)
    if args.cmd in (None, "list"):
        for name, status in asset_status().items():
            print(f"{name:32s} {status}")
        return 0
    for name in args.names:
        if name not in MODELS:
            print(f"unknown model asset '{name}'; known: {sorted(MODELS)}", file=sys.stderr)
            return 2
        try:
            path = prepare_model(name, cache=args.cache_dir, force=args.force)
        except AssetMissingError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
