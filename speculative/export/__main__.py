"""Export a training checkpoint: `python -m speculative.export RUN_DIR [--step N] [--out DIR]`.

RUN_DIR is a trainer out_dir (holding config.yaml and checkpoints/); default output RUN_DIR/export.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from runtime.checkpoint import CheckpointManager
from runtime.config import load_config
from speculative.export.format import export_draft
from speculative.model.draft import Eagle3Draft, Eagle3DraftConfig
from speculative.train.config import TrainConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run_dir")
    ap.add_argument("--step", type=int, default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    run = Path(args.run_dir)
    cfg = load_config(TrainConfig, run / "config.yaml")
    ck = CheckpointManager(run / "checkpoints").load(args.step, quarantine=False)  # exporting never moves folders
    if ck is None:
        raise SystemExit(f"no checkpoint under {run / 'checkpoints'}")
    from transformers import AutoConfig

    from runtime.assets import model_dir

    weights = ck.tensors["draft"]
    target_cfg = AutoConfig.from_pretrained(str(model_dir(cfg.target.model)))
    draft_cfg = Eagle3DraftConfig.from_target(target_cfg, int(weights["d2t"].shape[0]), cfg.target.aux_layer_ids)
    draft = Eagle3Draft(draft_cfg)
    draft.load_state_dict(weights, strict=False)
    out = export_draft(draft, args.out or run / "export")
    print(f"exported step {ck.step} of {run} to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
