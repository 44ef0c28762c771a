"""Export a training checkpoint: `python -m speculative export run_dir=RUN_DIR [step=N] [out=DIR]`.

RUN_DIR is a trainer out_dir (holding config.yaml and checkpoints/); the default output is RUN_DIR/export.
"""

from __future__ import annotations

from pathlib import Path

from transformers import AutoConfig

from runtime.assets import model_dir
from runtime.checkpoint import CheckpointManager
from runtime.config import ConfigError, StrictModel, config_from_cli, load_config
from speculative.export.format import export_draft
from speculative.model.draft import Eagle3Draft, Eagle3DraftConfig
from speculative.parallel.config import DistTrainConfig


class ExportConfig(StrictModel):
    run_dir: str  # a trainer out_dir
    step: int | None = None  # None: the newest intact checkpoint
    out: str | None = None  # None: <run_dir>/export


def export_checkpoint(cfg: ExportConfig) -> tuple[int, Path]:
    """(step exported, output folder)."""
    run = Path(cfg.run_dir)
    # the run's stored config: a DraftTrainConfig or the DistTrainConfig superset (only target.* is read)
    train_cfg = load_config(DistTrainConfig, run / "config.yaml")
    ck = CheckpointManager(run / "checkpoints").load(cfg.step, quarantine=False)  # exporting never moves folders
    if ck is None:
        raise ConfigError(f"no checkpoint under {run / 'checkpoints'}")
    weights = ck.tensors["draft"]
    target_cfg = AutoConfig.from_pretrained(str(model_dir(train_cfg.target.model)))
    # vocab and MLP width as trained (read off the weights, so a narrowed draft exports as it is)
    draft_cfg = Eagle3DraftConfig.from_target(target_cfg, int(weights["d2t"].shape[0]),
                                              train_cfg.target.aux_layer_ids,
                                              int(weights["midlayer.mlp.gate_proj.weight"].shape[0]))
    draft = Eagle3Draft(draft_cfg)
    draft.load_state_dict(weights, strict=False)
    return ck.step, export_draft(draft, cfg.out or run / "export")


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_cli(ExportConfig, argv, description=__doc__, example="run_dir=/path/to/run step=12")
    step, out = export_checkpoint(cfg)
    print(f"exported step {step} of {cfg.run_dir} to {out}")
    return 0
