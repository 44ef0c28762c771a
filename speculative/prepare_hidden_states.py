"""CLI: `python -m speculative.prepare_hidden_states --config experiments/configs/speculative/offline_smollm2.yaml`.

Re-running with the same out_dir resumes: intact shards are kept, missing or damaged ones rewritten.
"""

from __future__ import annotations

import json

from runtime.config import config_from_cli
from speculative.offline.config import PrepareConfig
from speculative.offline.prepare import prepare_hidden_states


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_cli(PrepareConfig, argv, description=__doc__, example="data.limit=64 storage_dtype=fp16")
    report = prepare_hidden_states(cfg)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
