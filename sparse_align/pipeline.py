"""The SIA pipeline in order: distillation data -> value model -> evaluation (the verbs in verbs.py run it).
Artifacts go to the run dir (`run_dir`, default the cache dir sia/<name>), result files to `output_dir`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from runtime.assets import load_tokenizer
from runtime.checkpoint import atomic_write_json
from runtime.device import pick_device
from runtime.llm.hf import HFBackend
from runtime.logging import get_logger, read_jsonl
from runtime.paths import cache_dir, results_dir
from runtime.results import with_provenance
from sparse_align.config import TEACHER, SIAConfig
from sparse_align.eval.evaluate import EvalContext, run_evaluation
from sparse_align.eval.report import write_report
from sparse_align.eval.tasks import COMPLETION_TASKS, split_prompts
from sparse_align.eval.timing import interleaved_timing
from sparse_align.rewards import make_reward
from sparse_align.rewards.llm_judge import LLMJudgeReward
from sparse_align.runguard import check_key
from sparse_align.value.data import generate_distill_data
from sparse_align.value.model import ValueModel, load_backbone
from sparse_align.value.ship import sha256
from sparse_align.value.train import train_value_head, train_value_lora

log = get_logger("sparse_align")


def run_dir(cfg: SIAConfig) -> Path:
    path = Path(cfg.run_dir) if cfg.run_dir else cache_dir(f"sia/{cfg.name}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def output_dir(cfg: SIAConfig) -> Path:
    """Where this run's result files go: `results_dir` of the config, else runtime.paths.results_dir()."""
    if not cfg.results_dir:
        return results_dir()
    path = Path(cfg.results_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


RESULT_PREFIX = "sparse_align"  # result files are <prefix>_<kind>_<name>.{json,md} (result_path)


def result_path(cfg: SIAConfig, kind: str, suffix: str = ".json") -> Path:
    """This run's result file of one kind (eval, timing, sweep, junctions) in `output_dir`."""
    return output_dir(cfg) / f"{RESULT_PREFIX}_{kind}_{cfg.name}{suffix}"


def load_base(cfg: SIAConfig) -> tuple[Any, Any]:
    model = load_backbone(cfg.value.backbone).to(pick_device())
    tok = load_tokenizer(cfg.value.backbone) if not Path(cfg.value.backbone).is_dir() else None
    if tok is None:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(cfg.value.backbone)
    return model, tok


def make_teacher(task: str):
    name = TEACHER[task]
    if name == "judge":
        return LLMJudgeReward(rubric=task)
    return make_reward(name)


def distill(cfg: SIAConfig, model: Any, tok: Any) -> list[dict[str, Any]]:
    prompts = split_prompts(cfg.eval.task, "train", cfg.distill.num_prompts)  # None: every training prompt
    teacher = make_teacher(cfg.eval.task)
    # None: distil at the evaluation length, so V is trained on the prefixes steering will see
    dcfg = cfg.distill.model_copy(update={"max_new_tokens": cfg.distill.max_new_tokens or cfg.eval.max_new_tokens})
    _migrate_distill_key(run_dir(cfg) / "distill.jsonl.key.json")
    check_key(run_dir(cfg) / "distill.jsonl", _distill_key(cfg, dcfg))
    return generate_distill_data(model, tok, prompts, teacher, dcfg, run_dir(cfg) / "distill.jsonl",
                                 completion=cfg.eval.task in COMPLETION_TASKS)


# where candidates are labelled is not part of the sampled data: other positions top the file up in place
_POSITION_FIELDS = {"candidate_positions", "candidate_bands"}


def _distill_key(cfg: SIAConfig, dcfg: Any) -> dict[str, Any]:
    return {"distill": dcfg.model_dump(mode="json", exclude=_POSITION_FIELDS), "task": cfg.eval.task,
            "backbone": cfg.value.backbone}


def _migrate_distill_key(sidecar: Path) -> None:
    """Sidecars written before positions left the key carry `candidate_positions`: drop it (same data)."""
    if sidecar.is_file():
        key = json.loads(sidecar.read_text())
        if _POSITION_FIELDS & set(key.get("distill", {})):
            key["distill"] = {k: v for k, v in key["distill"].items() if k not in _POSITION_FIELDS}
            atomic_write_json(sidecar, key)


def train(cfg: SIAConfig, model: Any, tok: Any) -> dict[str, float]:
    path = run_dir(cfg) / "distill.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no distillation data at {path}; run `python -m sparse_align distill` first")
    rows = [r for r in read_jsonl(path) if r["response_ids"]]
    # the data's bytes, not only its row count: a candidate top-up changes the data, not the rows
    check_key(run_dir(cfg) / "train", {"train": cfg.train.model_dump(mode="json"),
                                       "value": cfg.value.model_dump(mode="json"), "rows": len(rows),
                                       "data": sha256(path)})
    if cfg.value.lora_rank > 0:
        vm = ValueModel.build(cfg.value)  # its own backbone copy: LoRA must not touch the base model
        metrics = train_value_lora(vm, rows, cfg.train, run_dir(cfg) / "train")
    else:
        vm = ValueModel.build(cfg.value, backbone=model)
        metrics = train_value_head(vm, rows, cfg.train, run_dir(cfg) / "train")
    vm.save(run_dir(cfg) / "value_model")
    atomic_write_json(run_dir(cfg) / "train_summary.json", metrics)
    log.info("value model trained: %s", metrics)
    return metrics


def evaluate(cfg: SIAConfig, model: Any, tok: Any) -> dict[str, Any]:
    vm = ValueModel.load(run_dir(cfg) / "value_model", backbone=model)
    teacher = make_teacher(cfg.eval.task)
    second = None
    if cfg.eval.second_scorer == "judge" and cfg.eval.task == "sentiment":
        second = LLMJudgeReward(rubric="sentiment", backend=HFBackend(model, tok), model=cfg.value.backbone)
    t0 = time.perf_counter()
    partial = result_path(cfg, "eval", ".partial.json")

    def save_partial(methods: list[dict[str, Any]]) -> None:
        atomic_write_json(partial, {"complete": False, "methods": methods})

    result = run_evaluation(EvalContext(model, tok, vm, teacher, second, cfg.eval, on_method=save_partial))
    train_summary = run_dir(cfg) / "train_summary.json"
    result["meta"] = {
        "scale": cfg.name, "task": cfg.eval.task, "teacher": teacher.name,
        "second_scorer": second.name if second else "none",
        "value_model": f"{cfg.value.backbone} + head({cfg.value.head_hidden}) lora_rank={cfg.value.lora_rank}",
        "value_train": json.loads(train_summary.read_text()) if train_summary.is_file() else None,
        "num_prompts": cfg.eval.num_prompts, "max_new_tokens": cfg.eval.max_new_tokens, "top_k": cfg.eval.top_k,
        "weight": cfg.eval.weight, "batch_rows": cfg.eval.batch_rows, "timing_prompts": cfg.eval.timing_prompts,
        "total_wall_s": time.perf_counter() - t0, "device": str(pick_device()),
        "threads": torch.get_num_threads(), "config": cfg.model_dump(mode="json"),
    }
    write_report(result, result_path(cfg, "eval"), result_path(cfg, "eval", ".md"))
    partial.unlink(missing_ok=True)
    log.info("wrote %s", result_path(cfg, "eval", ".md"))
    return result


def timing(cfg: SIAConfig, model: Any, tok: Any) -> dict[str, Any]:
    """Interleaved per-token wall time of base / dense / SIA / random at the calibrated taus."""
    vm = ValueModel.load(run_dir(cfg) / "value_model", backbone=model)
    eval_json = result_path(cfg, "eval")
    if not eval_json.is_file():
        raise FileNotFoundError(f"{eval_json} missing: run `python -m sparse_align evaluate` first (it calibrates tau)")
    taus = {float(r): t for r, t in json.loads(eval_json.read_text())["taus"].items()}
    res = interleaved_timing(model, tok, vm, cfg.eval, taus)
    atomic_write_json(result_path(cfg, "timing"), with_provenance({"threads": torch.get_num_threads(), **res},
                                                                  config=cfg.model_dump(mode="json")))
    log.info("interleaved timing: %s", res)
    return res
