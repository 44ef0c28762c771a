"""CLI: `python -m speculative.prepare_hidden_states --config experiments/configs/specforge/offline_smollm2.yaml`.

Re-running with the same out_dir resumes: intact shards are kept, missing or damaged ones rewritten.
"""

from __future__ import annotations

import argparse
import json

from runtime.config import load_config
from speculative.offline.config import PrepareConfig
from speculative.offline.prepare import prepare_hidden_states


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="YAML config (experiments/configs/specforge/offline_*.yaml)")
    ap.add_argument("overrides", nargs="*", help="dotted overrides, e.g. data.limit=64 storage_dtype=fp16")
    args = ap.parse_args(argv)
    report = prepare_hidden_states(load_config(PrepareConfig, args.config, args.overrides))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
