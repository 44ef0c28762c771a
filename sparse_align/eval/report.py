"""Results JSON + markdown table (atomic writes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime.checkpoint import atomic_write_json, atomic_write_text
from runtime.results import with_provenance

COLUMNS = [("method", "{}"), ("reward", "{:.3f}"), ("reward_ci95", "±{:.3f}"), ("second_reward", "{:.3f}"),
           ("steered_fraction", "{:.2f}"), ("value_calls_per_token", "{:.2f}"), ("wall_s", "{:.1f}"),
           ("tokens_per_s", "{:.1f}"), ("b1_s_per_token", "{:.3f}"), ("b1_added_s_per_token", "{:+.3f}"), ("distinct_2", "{:.3f}"), ("ppl_base", "{:.2f}"), ("kl_per_token", "{:.3f}")]


def markdown_table(methods: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(c for c, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for m in methods:
        cells = [fmt.format(m[c]) if m.get(c) is not None else "-" for c, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def target_lines(target: list[dict[str, Any]]) -> list[str]:
    if not target:
        return ["No SIA point landed at 15-45% realised steering, so the target could not be checked."]
    out = []
    for t in target:
        verdict = "MET" if t["reward_vs_dense_ok"] and t["time_ok"] and t["beats_random"] else "NOT MET"
        unit = t.get("time_unit", "s wall")
        rnd = f"{t['random_reward']:.3f}" if t["random_reward"] is not None else "-"
        out.append(f"- {t['method']} (steered {t['steered_fraction']:.0%}): {verdict} — reward within dense CI: "
                   f"{t['reward_vs_dense_ok']}; added {t['added_wall_s']:.4f} vs dense "
                   f"{t['dense_added_wall_s']:.4f} {unit} (<= half: {t['time_ok']}); beats random-sparse "
                   f"({rnd}): {t['beats_random']} (beyond both CIs: {t.get('beats_random_significant')})")
    return out


def write_report(result: dict[str, Any], json_path: Path, md_path: Path) -> None:
    meta = result.get("meta", {})
    atomic_write_json(json_path, with_provenance(result, config=meta.get("config"), seed=(meta.get("config") or {}).get("seed"),
                                                 wall_time_s=meta.get("total_wall_s")))
    meta = result["meta"]
    md = [f"# SIA evaluation ({meta['scale']}, task {meta['task']})", "",
          f"teacher: {meta['teacher']}; second scorer: {meta['second_scorer']}; value model: {meta['value_model']}; "
          f"{meta['num_prompts']} eval prompts, {meta['max_new_tokens']} new tokens, K={meta['top_k']}, "
          f"w={meta['weight']}; total {meta['total_wall_s']:.0f}s on {meta['device']} ({meta['threads']} threads).",
          "", "wall_s / tokens_per_s: the method's own decoding in this run"
          + (f" (ragged batches of {meta['batch_rows']} sequences: throughput)" if meta.get("batch_rows", 1) > 1 else "")
          + "; b1_*: batch-1 latency, median over prompts, every method interleaved per prompt"
          + (f" ({meta['timing_prompts']} prompts)" if meta.get("timing_prompts") else " (not run)") + ".",
          "", markdown_table(result["methods"]), "", "## Target (SIA at 20-40% steering)", "",
          *target_lines(result["target"]), ""]
    atomic_write_text(md_path, "\n".join(md))
