"""`python -m speculative.demo`: EAGLE-3 draft training end to end on the real SmolLM2 target, tiny scale.

ShareGPT conversations -> chat rendering with assistant masks -> draft vocab (d2t/t2d) -> online target
states -> TTT unroll training -> vLLM/SGLang export -> reload. About 1-2 minutes on a 2-core CPU.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from runtime.config import load_config
from runtime.logging import get_logger
from speculative.export import export_draft, load_exported_draft
from speculative.train.build import build_training
from speculative.train.config import TrainConfig
from speculative.train.trainer import DraftTrainer

log = get_logger("speculative.demo")

DEMO_OVERRIDES = ["data.limit=16", "data.max_length=128", "data.draft_vocab_size=2048", "optim.batch_size=2",
                  "optim.grad_accum=1", "optim.lr=2e-3", "optim.warmup_steps=1", "ttt_length=3", "max_steps=8",
                  "ckpt_every=4", "tensorboard=false", "export=false"]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="spec-demo-") as tmp:
        cfg = load_config(TrainConfig, None, DEMO_OVERRIDES + [f"out_dir={tmp}"])
        setup = build_training(cfg)
        print(f"data: {json.dumps(setup.report)}")
        history = DraftTrainer(cfg, setup.target, setup.draft, setup.schedule, setup.val_examples).train()
        first, last = history[0], history[-1]
        print(f"step {first['step']}: loss {first['loss']:.3f} acc_0 {first['acc_0']:.3f} "
              f"accept_len {first['accept_len']:.3f}")
        print(f"step {last['step']}: loss {last['loss']:.3f} acc_0 {last['acc_0']:.3f} "
              f"accept_len {last['accept_len']:.3f}")
        out = export_draft(setup.draft.cpu(), Path(tmp) / "export")
        back = load_exported_draft(out, embed_weight=setup.target.embedding_weight().float().cpu())
        cfg_json = json.loads((out / "config.json").read_text())
        print(f"export: {sorted(p.name for p in out.iterdir())}, architectures {cfg_json['architectures']}, "
              f"aux ids {cfg_json['eagle_config']['eagle_aux_hidden_state_layer_ids']}, "
              f"draft vocab {back.config.draft_vocab_size} -> reloaded OK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
