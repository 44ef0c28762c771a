"""`python -m speculative.evaluate.bundle --config experiments/configs/specforge/bundle_smollm2.yaml`

The draft bundle pipeline: (optional) regenerate assistant turns with the target -> train the EAGLE-3
draft (`python -m speculative.train`, which exports to <out>/train/export) -> evaluate -> model card.
Every step's command line and wall time go into <out>/bundle.json. Training resumes from its newest
checkpoint when re-run with the same out_dir, so an interrupted bundle continues where it stopped.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal

from runtime.checkpoint import atomic_write_json
from runtime.config import StrictModel, load_config
from runtime.logging import JsonlWriter, get_logger, progress
from speculative.evaluate.config import EvalConfig, default_bundle_dir

log = get_logger("speculative.bundle")


class RegenConfig(StrictModel):
    enabled: bool = False
    backend: Literal["vllm", "hf"] = "vllm"
    conversations: int = 2000
    max_new_tokens: int = 384
    batch: int = 16


class BundleConfig(StrictModel):
    out_dir: str = ""  # "" = the default bundle dir in the cache (outside git)
    target: str = "smollm2-135m-instruct"
    train_config: str = "experiments/configs/specforge/smollm2_sharegpt.yaml"
    train_overrides: list[str] = []
    regenerate: RegenConfig = RegenConfig()
    eval_config: str = "experiments/configs/specforge/eval_smollm2.yaml"
    eval_overrides: list[str] = []

    def out(self) -> Path:
        return Path(self.out_dir or default_bundle_dir())


def regenerate(cfg: BundleConfig, path: Path) -> dict[str, Any]:
    """Answer the first user turn of ShareGPT conversations with the target itself (self-distillation
    data: the draft then learns the target's own distribution). Appends; resumes after a crash."""
    from runtime.llm import SamplingParams, make_backend
    from speculative.data.records import load_conversations

    convs, skips = load_conversations("sharegpt", limit=cfg.regenerate.conversations)
    done = sum(1 for _ in open(path, encoding="utf-8")) if path.is_file() else 0
    todo = [[next(m for m in c if m["role"] == "user")] for c in convs][done:]
    llm = make_backend(cfg.regenerate.backend, model=cfg.target)
    params = SamplingParams(max_new_tokens=cfg.regenerate.max_new_tokens, temperature=0.0)
    with JsonlWriter(path) as out:
        for start in progress(range(0, len(todo), cfg.regenerate.batch), desc="regenerate"):
            chunk = todo[start:start + cfg.regenerate.batch]
            for msgs, gen in zip(chunk, llm.generate(chunk, params)):
                out.write({"messages": [*msgs, {"role": "assistant", "content": gen.text}]})
    llm.close()
    return {"conversations": len(convs), "resumed_after": done, "skipped": dict(skips)}


def _run(cmd: list[str], record: dict[str, Any], name: str) -> None:
    log.info("%s: %s", name, shlex.join(cmd))
    t0 = time.time()
    subprocess.run(cmd, check=True)
    record[name] = {"command": shlex.join(cmd), "seconds": time.time() - t0}


def run_bundle(cfg: BundleConfig) -> dict[str, Any]:
    out = cfg.out()
    out.mkdir(parents=True, exist_ok=True)
    export = out / "train" / "export"
    eval_over = [f"draft_dir={export}", f"target={cfg.target}", *cfg.eval_overrides]
    eval_cfg = load_config(EvalConfig, cfg.eval_config, eval_over)  # a bad eval config fails before training
    record: dict[str, Any] = {"config": cfg.model_dump(mode="json"), "out_dir": str(out),
                              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    train_over = [f"out_dir={out / 'train'}", f"target.model={cfg.target}", "export=true", *cfg.train_overrides]
    if cfg.regenerate.enabled:
        t0 = time.time()
        regen_path = out / "regenerated.jsonl"
        record["regenerate"] = {**regenerate(cfg, regen_path), "path": str(regen_path),
                                "seconds": time.time() - t0}
        train_over.append(f"data.source={regen_path}")
    atomic_write_json(out / "bundle.json", record)
    _run([sys.executable, "-m", "speculative.train", "--config", cfg.train_config, *train_over], record, "train")
    atomic_write_json(out / "bundle.json", record)
    _run([sys.executable, "-m", "speculative.evaluate", "--config", cfg.eval_config, *eval_over], record, "evaluate")
    record["eval_json"] = eval_cfg.out_json
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    atomic_write_json(out / "bundle.json", record)
    from speculative.evaluate.model_card import write_model_card

    write_model_card(out)
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args(argv)
    run_bundle(load_config(BundleConfig, args.config, args.overrides))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
