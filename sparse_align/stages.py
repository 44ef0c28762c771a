"""The stages of issue 14's protocol: the powered evaluation, the w sweep, the junction measurement, the
post-trained stand-in and the head export. Each reads the run dir that `distill`/`train` filled (pipeline.py)
and writes its result files to the run's output dir (pipeline.result_path)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from runtime.checkpoint import atomic_write_json, atomic_write_text
from runtime.device import pick_device
from runtime.llm.hf import HFBackend
from runtime.logging import get_logger, read_jsonl
from runtime.results import with_provenance
from sparse_align.config import SIAConfig, SteerConfig
from sparse_align.eval.analysis import analyse
from sparse_align.eval.arms import plan_arms
from sparse_align.eval.junctions import measure
from sparse_align.eval.paired import PairedContext
from sparse_align.eval.powered import PoweredContext, calibrate_taus, run_powered
from sparse_align.eval.powered_report import analysis_lines, arms_table, write_powered_report
from sparse_align.eval.sweep import run_sweep, sweep_lines
from sparse_align.eval.tasks import prompt_ids, split_prompts
from sparse_align.pipeline import make_teacher, result_path, run_dir
from sparse_align.posttrain import posttrain as posttrain_model
from sparse_align.rewards import make_reward
from sparse_align.rewards.llm_judge import LLMJudgeReward
from sparse_align.value.model import HEAD_FILE, ValueModel, load_backbone
from sparse_align.value.ship import export_head as ship_head
from sparse_align.value.ship import load_shipped, sha256, shipped_dir

log = get_logger("sparse_align.stages")


def paired_context(cfg: SIAConfig, model: Any, tok: Any, vm: Any, split: str, n: int | None) -> PairedContext:
    prompts = split_prompts(cfg.eval.task, split, n)
    return PairedContext(model, tok, vm, make_teacher(cfg.eval.task), prompts,
                         [prompt_ids(tok, p, cfg.eval.task) for p in prompts], split, cfg.eval.seed, cfg.eval.batch_rows)


def make_scorers(cfg: SIAConfig, model: Any, tok: Any) -> dict[str, Any]:
    out = {}
    for name in cfg.eval.scorers:
        if name == "judge":
            out[name] = LLMJudgeReward(rubric="sentiment", backend=HFBackend(model, tok), model=cfg.value.backbone)
        else:
            out[name] = make_reward(name)
    return out


def value_head_dir(cfg: SIAConfig) -> Path:
    """The folder of the value model the evaluation steers with (`eval.value_head`)."""
    if not cfg.eval.value_head:
        return run_dir(cfg) / "value_model"
    return shipped_dir(cfg.value.backbone) if cfg.eval.value_head == "shipped" else Path(cfg.eval.value_head)


def load_value_model(cfg: SIAConfig, model: Any) -> ValueModel:
    """The value model in use; an exported head (it has a card) is sha256-checked by load_shipped."""
    folder = value_head_dir(cfg)
    return load_shipped(model, folder) or ValueModel.load(folder, backbone=model)


def value_facts(cfg: SIAConfig) -> dict[str, Any]:
    """Training facts of the head in use: a saved head's card.json, else this run's train_summary.json."""
    path = value_head_dir(cfg) / "card.json" if cfg.eval.value_head else run_dir(cfg) / "train_summary.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _resume_key(cfg: SIAConfig) -> str:
    """Partial arms resume only under the same eval/value config and the same head bytes (a content hash, so a
    partial file committed on one machine resumes on another that has the same head). Where the head lies
    (`eval.value_head`: run dir, shipped copy, a folder) is not part of it: its bytes identify it."""
    head = value_head_dir(cfg) / HEAD_FILE
    stamp = sha256(head) if head.is_file() else "none"
    return json.dumps([cfg.eval.model_dump(mode="json", exclude={"value_head"}), cfg.value.model_dump(mode="json"),
                       stamp], sort_keys=True)


def powered(cfg: SIAConfig, model: Any, tok: Any) -> dict[str, Any]:
    vm = load_value_model(cfg, model)
    partial = result_path(cfg, "eval", ".partial.json")
    key = _resume_key(cfg)
    state = json.loads(partial.read_text()) if partial.is_file() else {}
    if state.get("key") != key:
        state = {"key": key}  # another config or value model: start over
    elif state.get("arms"):
        log.info("resuming: %d arms already in %s", len(state["arms"]), partial)
    post = None
    if cfg.eval.posttrained:
        post = AutoModelForCausalLM.from_pretrained(str(run_dir(cfg) / "posttrained")).to(pick_device()).eval()
    t0 = time.perf_counter()
    ctx = PoweredContext(paired_context(cfg, model, tok, vm, "eval", cfg.eval.num_prompts),
                         paired_context(cfg, model, tok, vm, "train", cfg.eval.calibration_prompts), cfg.eval,
                         make_scorers(cfg, model, tok), post, state, on_arm=lambda s: atomic_write_json(partial, s))
    result = run_powered(ctx)
    train = value_facts(cfg)
    meta = {"name": cfg.name, "task": cfg.eval.task, "teacher": ctx.paired.teacher.name,
            "value_model": f"{cfg.value.backbone} + head({cfg.value.head_hidden})", "value_train": train,
            "value_head": str(value_head_dir(cfg)),
            "value_pairwise": {k: round(v["acc"] if isinstance(v, dict) else v, 3)  # summary: dicts; card: floats
                               for k, v in (train.get("val_pairwise_by_band") or {}).items()},
            "num_prompts": cfg.eval.num_prompts, "seeds": cfg.eval.seeds, "detector": cfg.eval.detector,
            "top_k": cfg.eval.top_k, "weight": cfg.eval.weight, "max_new_tokens": cfg.eval.max_new_tokens,
            "bootstrap": cfg.eval.bootstrap, "equivalence_margin": cfg.eval.equivalence_margin,
            "total_wall_s": time.perf_counter() - t0, "device": str(pick_device()), "threads": torch.get_num_threads(),
            "seed": cfg.eval.seed, "config": cfg.model_dump(mode="json")}
    write_powered_report(result, meta, result_path(cfg, "eval"), result_path(cfg, "eval", ".md"))
    partial.unlink(missing_ok=True)
    log.info("wrote %s", result_path(cfg, "eval", ".md"))
    return result


def powered_status(cfg: SIAConfig) -> Path:
    """An interim report of a powered run in progress (or stopped): the arms finished so far with the
    pre-registered statistics over those present -> sparse_align_eval_<name>.interim.md. Reads only the
    partial file; the final report is still the one `powered` writes when every arm is done."""
    partial = result_path(cfg, "eval", ".partial.json")
    if not partial.is_file():
        raise FileNotFoundError(f"no powered run in progress: {partial} is missing")
    state = json.loads(partial.read_text())
    taus = {float(r): t for r, t in state.get("taus", {}).items()}
    planned = [a.name for a in plan_arms(cfg.eval, taus)] if taus else []
    arms = state.get("arms", {})
    stale = state.get("key") != _resume_key(cfg)
    an = analyse(arms, cfg.eval, state.get("timing"))
    md = [f"# SIA powered evaluation ({cfg.name}): INTERIM, {len(arms)} of {len(planned)} arms done", "",
          f"From `{partial.name}`" + (" (WARNING: written under another config or value head: a rerun starts over)"
                                     if stale else " (a rerun of `powered` resumes from it)") + ". "
          f"{cfg.eval.num_prompts} held-out prompts x {cfg.eval.seeds} paired seeds, detector {cfg.eval.detector}, "
          f"w {cfg.eval.weight}, value head `{cfg.eval.value_head or 'run dir'}`. Not yet run: "
          + (", ".join(a for a in planned if a not in arms) or "none") + "; batch-1 timing "
          + ("done" if state.get("timing") else "not yet (so no time verdict)") + ".", "",
          *arms_table({"arms": arms, "timing": state.get("timing")}, cfg.eval.seeds), "",
          *analysis_lines(an, cfg.eval.equivalence_margin)]
    out = result_path(cfg, "eval", ".interim.md")
    atomic_write_text(out, "\n".join(md) + "\n")
    log.info("wrote %s", out)
    return out


def _write(kind: str, cfg: SIAConfig, result: dict[str, Any], md: list[str]) -> Path:
    path = result_path(cfg, kind)
    atomic_write_json(path, with_provenance(result, config=cfg.model_dump(mode="json"), seed=cfg.eval.seed))
    atomic_write_text(path.with_suffix(".md"), "\n".join(md) + "\n")
    log.info("wrote %s", path.with_suffix(".md"))
    return path


def sweep(cfg: SIAConfig, model: Any, tok: Any) -> dict[str, Any]:
    vm = load_value_model(cfg, model)
    ctx = paired_context(cfg, model, tok, vm, "train", cfg.sweep.num_prompts)
    rates = [r for r in cfg.sweep.rates if r < 1.0]
    taus = {float(r): t for r, t in calibrate_taus(ctx, cfg.eval, rates).items()} if rates else {}
    points = run_sweep(ctx, cfg.sweep, cfg.eval, taus)
    _write("sweep", cfg, {"taus": taus, "points": points},
           [f"# SIA w sweep ({cfg.name}): {cfg.sweep.num_prompts} training prompts x {cfg.sweep.seeds} seeds, "
            f"detector {cfg.eval.detector}", "", *sweep_lines(points)])
    return {"points": points}


def junctions(cfg: SIAConfig, model: Any, tok: Any) -> dict[str, Any]:
    ctx = paired_context(cfg, model, tok, None, "train", cfg.junctions.num_prompts)
    steer = SteerConfig(mode="base", top_k=cfg.eval.top_k, weight=cfg.eval.weight, max_new_tokens=cfg.eval.max_new_tokens)
    res = measure(model, ctx, steer, cfg.junctions.seeds, cfg.junctions.rates)
    md = [f"# Junction detectors ({cfg.name}): share of the one-token reward gain at the steered positions", "",
          f"{res['responses']} base responses, {res['positions']} positions, exact teacher on every top-{cfg.eval.top_k} "
          f"candidate. Recommended detector: **{res['recommended_detector']}**", "",
          "| gain | rate | oracle | random | " + " | ".join(res["mean_captured_max"]) + " |",
          "|---|---|---|---|" + "---|" * len(res["mean_captured_max"])]
    for kind, by_rate in res["captured"].items():
        for rate, row in by_rate.items():
            md.append(f"| {kind} | {float(rate):.0%} | " + " | ".join(f"{v:.3f}" for v in row.values()) + " |")
    _write("junctions", cfg, res, md)
    return res


def posttrain(cfg: SIAConfig, model: Any, tok: Any) -> Path:
    rows = read_jsonl(run_dir(cfg) / "distill.jsonl")
    base = load_backbone(cfg.value.backbone).to(pick_device())  # a private copy: LoRA merges into it
    return posttrain_model(base, tok, rows, cfg.posttrain, run_dir(cfg) / "posttrained")


def export_head(cfg: SIAConfig, model: Any, tok: Any) -> Path:
    """Ship the trained head of this run (<= 5 MB) into sparse_align/assets (the backbone's shipped folder)
    with sha256 + model card."""
    summary = json.loads((run_dir(cfg) / "train_summary.json").read_text())
    keep = ("val_pairwise_acc", "val_mse", "val_corr", "train_prompts", "val_prompts", "best_step", "steps")
    card = {"run": cfg.name, "teacher": cfg.distill.teacher, "distill": cfg.distill.model_dump(mode="json"),
            **{k: summary.get(k) for k in keep},
            "val_pairwise_by_band": {k: v["acc"] for k, v in (summary.get("val_pairwise_by_band") or {}).items()},
            "val_pairs_by_band": {k: v["pairs"] for k, v in (summary.get("val_pairwise_by_band") or {}).items()}}
    return ship_head(run_dir(cfg) / "value_model", shipped_dir(cfg.value.backbone), card)
