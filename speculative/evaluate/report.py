"""Markdown renderings of spec_eval.json (the results table) used by the eval run and the model card."""

from __future__ import annotations

from typing import Any


def fmt(x: Any, spec: str = ".2f") -> str:
    return format(x, spec) if isinstance(x, (int, float)) else "-"


def markdown_table(report: dict[str, Any]) -> str:
    dec = report.get("config", {}).get("decode", {})
    lines = [f"Engine: {dec.get('mode')} depth {dec.get('depth')} topk {dec.get('topk')} "
             f"draft tokens {dec.get('num_draft_tokens')}, temperature {dec.get('temperature')}, "
             f"max_new_tokens {dec.get('max_new_tokens')}; draft `{report.get('draft_dir')}`; "
             f"{report.get('env', {}).get('threads')} threads on {report.get('env', {}).get('device')}.", "",
             "| benchmark | turns | tau | accept@1 | accept@2 | accept@3 | spec tok/s | AR tok/s | speed-up "
             "| same output |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for bench, r in report.get("engine", {}).items():
        reach = r["acceptance"]["reach"] + [None, None, None]
        lines.append(f"| {bench} | {r['turns']} | {fmt(r['tau'])} | {fmt(reach[0])} | {fmt(reach[1])} | "
                     f"{fmt(reach[2])} | {fmt(r['spec_tokens_per_s'], '.1f')} | {fmt(r['ar_tokens_per_s'], '.1f')} "
                     f"| {fmt(r['speedup'])}x | {r.get('same_output_as_ar')} |")
    split_rows = [(b, r) for b, r in report.get("engine", {}).items() if r.get("time_split_s")]
    if split_rows:
        lines += ["", "Where the speculative time goes (share of spec wall time) and the break-even tau "
                  "(one draft+verify round in AR steps: speed-up ~= tau / round cost):", "",
                  "| benchmark | prefill | draft | verify | other | AR step ms | round cost (AR steps) |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for bench, r in split_rows:
            split = r["time_split_s"]
            total = max(sum(split.values()), 1e-9)
            share = " | ".join(f"{100 * split[k] / total:.0f}%" for k in ("prefill", "draft", "verify", "other"))
            lines.append(f"| {bench} | {share} | {fmt(1000 * r['ar_step_s'], '.1f') if 'ar_step_s' in r else '-'} | "
                         f"{fmt(r.get('round_cost_ar_steps'))} |")
    if report.get("sweep"):
        lines += ["", "| sweep | depth | topk | draft tokens | min draft p | tau | speed-up |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for s in report["sweep"]:
            lines.append(f"| {s['mode']} | {s['depth']} | {s['topk']} | {s['num_draft_tokens']} | "
                         f"{s.get('min_draft_prob', 0.0):g} | {fmt(s['tau'])} | {fmt(s['speedup'])}x |")
    vllm = report.get("vllm")
    if vllm:
        lines += ["", "| vLLM method | tok/s | tau | speed-up vs vLLM AR | note |", "|---|---:|---:|---:|---|"]
        for method, r in vllm.items():
            note = r.get("error", "")[:120].replace("|", "/").replace("\n", " ")
            lines.append(f"| {method} | {fmt(r.get('tokens_per_s'), '.1f')} | {fmt(r.get('tau'))} | "
                         f"{fmt(r.get('speedup_vs_vllm_ar'))} | {note} |")
    return "\n".join(lines) + "\n"
