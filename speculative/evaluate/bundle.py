"""`python -m speculative bundle --config experiments/configs/speculative/bundle_smollm2.yaml [key=value ...]`

The draft bundle pipeline, each stage resumable and recorded (command line + wall time) in
<out>/bundle.json:

  regenerate  answer ShareGPT first turns with the target itself (self-distillation, vLLM batched),
              content-hash cached: <out>/regenerated.jsonl
  (mix)       with `human.conversations` > 0, human-written conversations from the asset go first and the
              self-distilled ones after them (the held-out tail, `val.examples`, is the target's own text):
              <out>/train_data.jsonl
  prepare     run the target once over that data and write hidden-state shards (train_kind offline)
  train       train the draft (`python -m speculative train`): from the shards for several epochs (offline), or
              with the target run online (one pass over more data costs less than shards + epochs);
              resumes from its newest checkpoint, or -- when the cache dir is gone -- starts from the
              shipped draft (`init_from`)
  export      bf16 export; `ship_dir` (in git) gets the export + sha256 + model card
  evaluate    `python -m speculative evaluate` on the export

The stage configs are named by the caller (prepare_config, train_config, eval_config: YAML files); a stage
that runs without its config is refused when the bundle config loads.

Re-running the same command continues where it stopped.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import model_validator

from runtime.checkpoint import atomic_write_json
from runtime.config import StrictModel, config_from_cli, load_config
from runtime.logging import get_logger
from speculative.evaluate.config import SpecEvalConfig, default_bundle_dir

log = get_logger("speculative.bundle")


class RegenConfig(StrictModel):
    enabled: bool = True
    backend: Literal["vllm", "hf"] = "vllm"
    source: str = "sharegpt"
    conversations: int = 2000  # read from the start of the asset (the eval holds out its end)
    max_new_tokens: int = 256
    max_prompt_chars: int = 2000
    chunk: int = 128  # prompts per generate call: the unit of resume


class HumanDataConfig(StrictModel):
    """Human-written conversations trained on beside the self-distilled ones. Why: the round-2 SmolLM2 draft,
    trained ~5 epochs on 1.7k self-distilled conversations, scored acc_0 0.63 on them and 0.40 on held-out
    ones (MT-Bench accept@1 0.35): data, not epochs, was short, and self-distilling costs ~81 generated
    tok/s here while the targets' soft labels on human text cost one forward."""

    source: str = "sharegpt"
    offset: int = 2500  # validated conversations skipped first (the regenerated prompts come from the start)
    conversations: int = 0  # 0 = self-distilled data only


class BundleConfig(StrictModel):
    out_dir: str = ""  # "" = <cache>/bundles/<ship_dir's folder name> (outside git)
    target: str = "smollm2-135m-instruct"
    regenerate: RegenConfig = RegenConfig()
    human: HumanDataConfig = HumanDataConfig()
    train_kind: Literal["offline", "online"] = "offline"
    prepare_config: str | None = None  # `speculative prepare` YAML; needed by stage prepare with train_kind offline
    train_config: str | None = None  # `speculative train` YAML; needed by stage train
    train_overrides: list[str] = []
    ship_dir: str = ""  # "" = do not ship; else the export (bf16) + SHA256SUMS + model card go there
    init_from: str = ""  # an export to start from when no checkpoint exists (e.g. the shipped draft)
    eval_config: str | None = None  # `speculative evaluate` YAML; needed by stage evaluate
    eval_overrides: list[str] = []
    stages: list[Literal["regenerate", "prepare", "train", "ship", "evaluate"]] = [
        "regenerate", "prepare", "train", "ship", "evaluate"]

    @model_validator(mode="after")
    def _check_stage_configs(self) -> BundleConfig:
        need = {"train": "train_config", "evaluate": "eval_config"}
        if self.train_kind == "offline":
            need["prepare"] = "prepare_config"
        missing = [f"{key} (stage {stage})" for stage, key in need.items() if stage in self.stages
                   and getattr(self, key) is None]
        if missing:
            raise ValueError(f"set {', '.join(missing)}: the YAML config of each stage that runs (a bundle "
                             "config such as bundle_smollm2.yaml names them all)")
        return self

    def out(self) -> Path:
        return Path(self.out_dir or (default_bundle_dir(Path(self.ship_dir).name) if self.ship_dir
                                     else default_bundle_dir()))


def regenerate(cfg: BundleConfig, path: Path) -> dict[str, Any]:
    from runtime.llm import SamplingParams, make_backend
    from speculative.data.records import load_conversations
    from speculative.data.regenerate import regenerate as run

    r = cfg.regenerate
    convs, skips = load_conversations(r.source, limit=r.conversations)
    llm = make_backend(r.backend, model=cfg.target)
    try:
        counts = run(convs, llm, path, SamplingParams(max_new_tokens=r.max_new_tokens, temperature=0.0),
                     model=cfg.target, chunk=r.chunk, max_prompt_chars=r.max_prompt_chars)
    finally:
        llm.close()
    return {**counts, "conversations": len(convs), "skipped_on_input": dict(skips)}


def write_training_mix(path: Path, human: HumanDataConfig, distilled: str) -> Path:
    """Human conversations, then the self-distilled ones, as one JSONL (atomic)."""
    from runtime.checkpoint import atomic_write_text
    from speculative.data.records import load_conversations

    people, _ = load_conversations(human.source, limit=human.offset + human.conversations)
    people = people[human.offset:]
    if len(people) < human.conversations:
        raise ValueError(f"human.source {human.source} has {len(people)} conversations after offset "
                         f"{human.offset}, {human.conversations} asked for")
    own, _ = load_conversations(distilled)
    lines = [json.dumps({"messages": m}, ensure_ascii=False) for m in [*people, *own]]
    log.info("training data: %d human + %d self-distilled conversations -> %s", len(people), len(own), path)
    return atomic_write_text(path, "\n".join(lines) + "\n")


def _run(cmd: list[str], record: dict[str, Any], name: str) -> None:
    log.info("%s: %s", name, shlex.join(cmd))
    t0 = time.time()
    subprocess.run(cmd, check=True)
    record[name] = {"command": shlex.join(cmd), "seconds": time.time() - t0}


def ship(export: Path, ship_dir: Path, bundle_dir: Path) -> None:
    """The export in bf16 (half the bytes; CPU inference upcasts) + SHA256SUMS + model card."""
    import torch

    from speculative.evaluate.model_card import write_model_card, write_sha256sums
    from speculative.export import export_draft, load_exported_draft

    export_draft(load_exported_draft(export), ship_dir, dtype=torch.bfloat16)
    write_sha256sums(ship_dir)
    write_model_card(bundle_dir, ship_dir)


def run_bundle(cfg: BundleConfig) -> dict[str, Any]:
    out = cfg.out()
    out.mkdir(parents=True, exist_ok=True)
    export = out / "train" / "export"
    # evaluate what users get: the shipped bf16 draft when there is one
    eval_over = [f"draft_dir={cfg.ship_dir or export}", f"target={cfg.target}", *cfg.eval_overrides]
    # a bad eval config fails before training
    eval_cfg = load_config(SpecEvalConfig, cfg.eval_config, eval_over) if cfg.eval_config else None
    record_path = out / "bundle.json"
    # stages run one at a time (or resumed) add to the same record instead of replacing it
    record: dict[str, Any] = json.loads(record_path.read_text()) if record_path.is_file() else {}
    record.update({"config": cfg.model_dump(mode="json"), "out_dir": str(out)})
    record.setdefault("started", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    data = cfg.regenerate.source
    if cfg.regenerate.enabled:
        data = str(out / "regenerated.jsonl")
        if "regenerate" in cfg.stages:
            t0 = time.time()
            record["regenerate"] = {**regenerate(cfg, Path(data)), "path": data, "seconds": time.time() - t0}
            atomic_write_json(record_path, record)
    if cfg.human.conversations and {"prepare", "train"} & set(cfg.stages):
        data = str(write_training_mix(out / "train_data.jsonl", cfg.human, data))
    shards = out / "hidden_states"
    data_over = [f"data.source={data}", "data.limit=null", f"target.model={cfg.target}"]
    offline = cfg.train_kind == "offline"
    if "prepare" in cfg.stages and offline:
        _run([sys.executable, "-m", "speculative", "prepare", "--config", cfg.prepare_config,
              *data_over, f"out_dir={shards}"], record, "prepare")
        atomic_write_json(record_path, record)
    if "train" in cfg.stages:
        source = ["target_kind=offline", f"offline_dir={shards}"] if offline else ["target_kind=hf", *data_over]
        train_over = [f"out_dir={out / 'train'}", f"target.model={cfg.target}", *source, "export=true",
                      *cfg.train_overrides]
        if cfg.init_from and Path(cfg.init_from, "config.json").is_file():
            train_over.append(f"init_from={cfg.init_from}")
        elif cfg.init_from:  # the first build of a bundle: nothing shipped to continue from yet
            log.info("init_from %s holds no export yet: the draft starts from scratch", cfg.init_from)
        _run([sys.executable, "-m", "speculative", "train", "--config", cfg.train_config, *train_over],
             record, "train")
        record["train"]["overrides"] = cfg.train_overrides  # a later stage-only run rewrites `config`
        atomic_write_json(record_path, record)
    if "ship" in cfg.stages and cfg.ship_dir:
        ship(export, Path(cfg.ship_dir), out)
    if "evaluate" in cfg.stages:
        _run([sys.executable, "-m", "speculative", "evaluate", "--config", cfg.eval_config, *eval_over], record,
             "evaluate")
        assert eval_cfg is not None  # BundleConfig requires eval_config for this stage
        record["eval_json"] = str(eval_cfg.json_path())
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    atomic_write_json(record_path, record)
    shipped = bool(cfg.ship_dir) and Path(cfg.ship_dir, "config.json").is_file()
    # the card describes the weights: rewritten only by a run that trained, shipped or evaluated them
    if set(cfg.stages) & {"train", "ship", "evaluate"} and (shipped or (export / "config.json").is_file()):
        from speculative.evaluate.model_card import write_model_card

        write_model_card(out, Path(cfg.ship_dir) if shipped else None)
    return record


def main(argv: list[str] | None = None) -> int:
    run_bundle(config_from_cli(BundleConfig, argv, description=__doc__, example="'stages=[regenerate]'"))
    return 0
