"""Markdown renderings of speculative_eval.json (the results table) used by the eval run and the model card."""

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
    vllm = {k: r for k, r in (report.get("vllm") or {}).items() if isinstance(r, dict)}
    if vllm:
        lines += ["", "| vLLM method | tok/s | tau | speed-up vs vLLM AR | same output as vLLM AR | note |",
                  "|---|---:|---:|---:|---|---|"]
        for method, r in vllm.items():
            note = r.get("error", "")[:120].replace("|", "/").replace("\n", " ")
            if r.get("setting"):
                note = " ".join(f"{k}={v}" for k, v in r["setting"].items()) + (f"; {note}" if note else "")
            same = (r.get("same_output_as_vllm_ar") or {}).get("all", "-")
            lines.append(f"| {method} | {fmt(r.get('tokens_per_s'), '.1f')} | {fmt(r.get('tau'))} | "
                         f"{fmt(r.get('speedup_vs_vllm_ar'))} | {same} | {note} |")
    sweep = (report.get("vllm") or {}).get("ngram_sweep")
    if sweep:
        lines += ["", "| vLLM n-gram sweep: k | min n | max n | tok/s | tau |", "|---:|---:|---:|---:|---:|"]
        for r in sweep:
            lines.append(f"| {r['num_speculative_tokens']} | {r['prompt_lookup_min']} | {r['prompt_lookup_max']} | "
                         f"{fmt(r.get('tokens_per_s'), '.1f')} | {fmt(r.get('tau'))} |")
    lines += compare_table(report)
    return "\n".join(lines) + "\n"


def main_label(report: dict[str, Any]) -> str:
    dec = report.get("config", {}).get("decode", {})
    tree = f" topk {dec.get('topk')} n {dec.get('num_draft_tokens')}" if dec.get("mode") == "tree" else ""
    return f"eagle3 {dec.get('mode')} d{dec.get('depth')}{tree}"


def compare_rows(report: dict[str, Any], bench: str) -> list[dict[str, Any]]:
    """One row per method on `bench`: ours (AR, main, extra methods), then vLLM's; speed-ups vs our AR."""
    main = report.get("engine", {}).get(bench)
    if not main:
        return []
    ar_tps = main["ar_tokens_per_s"]
    rows = [{"method": "AR (ours)", "tokens_per_s": ar_tps, "speedup": 1.0, "same": True}]
    for name, r in [(main_label(report), main), *report.get("methods", {}).get(bench, {}).items()]:
        rows.append({"method": name, "tokens_per_s": r["spec_tokens_per_s"], "speedup": r["speedup"],
                     "tau": r["tau"], "reach": r["acceptance"]["reach"], "round_cost": r.get("round_cost_ar_steps"),
                     "sources": (r.get("sources") or {}).get("accepted"), "same": r.get("same_output_as_ar")})
    for method, r in (report.get("vllm") or {}).items():
        per = r.get("per_benchmark", {}).get(bench) if isinstance(r, dict) else None
        if per:
            same = (r.get("same_output_as_vllm_ar") or {}).get("mismatched_prompts", {}).get(bench)
            rows.append({"method": f"vLLM {method}", "tokens_per_s": per["tokens_per_s"],
                         "speedup": per["tokens_per_s"] / max(ar_tps, 1e-9), "tau": per.get("tau"),
                         "reach": per.get("acceptance_reach"), "same": None if same is None else same == 0})
    return rows


def compare_table(report: dict[str, Any]) -> list[str]:
    if not report.get("methods") and not report.get("vllm"):
        return []
    lines = ["", "Side by side: tok/s over whole requests (prefill included) and speed-up vs our AR on the same "
             "turns, timed back to back; accepted drafted tokens by source (model = EAGLE-3, lookup, both); vLLM "
             "rows use the first turns of its `prompts_per_benchmark` items, tau/acceptance from its counters:"]
    for bench in report.get("engine", {}):
        rows = compare_rows(report, bench)
        lines += ["", f"**{bench}**", "", "| method | tok/s | speed-up | tau | accept@1 | accept@2 | accept@3 | "
                  "round cost | accepted model/lookup/both | same output as AR |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
        for r in rows:
            reach = (r.get("reach") or []) + [None] * 3
            src = r.get("sources")
            src = f"{src.get('model', 0)}/{src.get('lookup', 0)}/{src.get('both', 0)}" if src else "-"
            lines.append(f"| {r['method']} | {fmt(r['tokens_per_s'], '.1f')} | {fmt(r['speedup'])}x | "
                         f"{fmt(r.get('tau'))} | {fmt(reach[0])} | {fmt(reach[1])} | {fmt(reach[2])} | "
                         f"{fmt(r.get('round_cost'))} | {src} | {r.get('same') if r.get('same') is not None else '-'} |")
    return lines
