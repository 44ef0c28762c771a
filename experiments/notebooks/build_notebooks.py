"""Source of the three reproduction notebooks: `python experiments/notebooks/build_notebooks.py` rewrites
experiments/notebooks/{speculative,sopr_rag,sparse_align}.ipynb (unexecuted); `make notebooks` then executes them.

Kept as Python so the notebooks are reviewed as code and cannot drift apart in their shared cells.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """\
import json
import tempfile
from pathlib import Path

from IPython.display import Image, Markdown, display

from experiments import nbtools

RESULTS, LIVE = nbtools.results_dir(), nbtools.live_mode()
print(f"results: {RESULTS} | live step: {LIVE}")


def load(*names):
    \"\"\"The first of these result files that exists (full scale first), as (name, data).\"\"\"
    for name in names:
        if (RESULTS / name).is_file():
            return name, json.loads((RESULTS / name).read_text())
    print(f"none of {names} in {RESULTS}: run the repro target above")
    return None, None


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    display(Markdown("\\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows])))"""

CLAIMS_MD = "## Paper claims beside our numbers\n\nThe same rows as `experiments/REPORT.md` (rules in " \
            "`experiments/claims.yaml`), recomputed from the result files now."


def notebook(title: str, intro: str, live_md: str, live: str, paper_id: str, tables: str, figures: str,
             closing: str) -> nbformat.NotebookNode:
    nb = new_notebook(cells=[
        new_markdown_cell(f"# {title}\n\n{intro}"),
        new_code_cell(SETUP),
        new_markdown_cell(f"## Live step\n\n{live_md}"),
        new_code_cell(live),
        new_markdown_cell(CLAIMS_MD),
        new_code_cell(f'display(Markdown(nbtools.claims_markdown("{paper_id}")))'),
        new_markdown_cell("## Result tables"),
        new_code_cell(tables),
        new_markdown_cell("## Figures (from `experiments/figures/`, reading only the result JSON)"),
        new_code_cell(figures),
        new_markdown_cell(closing),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


SPECULATIVE = notebook(
    "SpecForge / EAGLE-3 on SmolLM2-135M (CPU)",
    "Train an EAGLE-3 draft for SmolLM2-135M-Instruct, then measure acceptance length (tau) and wall-clock "
    "speed-up over autoregressive decoding on MT-Bench / HumanEval / ShareGPT.\n\n"
    "* `make repro-speculative SCALE=small`: small draft + quick eval -> `speculative_eval_small.json` "
    "(~1 h on 2 cores)\n"
    "* `make repro-speculative SCALE=full`: `speculative-bundle` (train, export, full eval) + kernel bench -> "
    "`speculative_eval.json`, `bench_kernels.json` (about a day on 2 cores); the report quotes these.",
    "`tiny` (CI): profile the real target's verify latency for 1 vs 4 tokens. A draft chain only pays off "
    "when tau exceeds this cost ratio, which is why the CPU speed-up target is stated beside tau. "
    "`small` runs the whole small-scale pipeline (`make repro-speculative SCALE=small`).",
    """\
if LIVE == "small":
    nbtools.run(["make", "repro-speculative", "SCALE=small"], timeout=6 * 3600)
elif LIVE == "tiny":
    out = Path(tempfile.mkdtemp()) / "profile.json"
    nbtools.python("-m", "speculative", "profile", "context=16", "sizes=[1,4]", "repeats=2", f"out={out}")
    prof = json.loads(out.read_text())
    ratio = prof["cost_ratio_vs_1"]["4"]
    print(f"verify 1 token: {prof['engine_verify_s']['1'] * 1e3:.0f} ms, 4 tokens: "
          f"{prof['engine_verify_s']['4'] * 1e3:.0f} ms -> cost ratio {ratio:.2f} (2 repeats: noisy on a shared CPU)")
    print(f"a depth-3 chain verifies 4 tokens per step: speed-up <= tau / {ratio:.2f}, before draft cost")
    _, stored = load("speculative_profile.json")
    if stored:
        print(f"`make speculative-profile` (context {stored['context']}): cost ratio vs 1 token = {stored['cost_ratio_vs_1']}")""",
    "specforge",
    """\
name, spec = load("speculative_eval.json", "speculative_eval_small.json")
if spec:
    print(f"{name}: decode {spec['config']['decode']}")
    table(["benchmark", "turns", "tau", "speed-up", "AR tok/s", "spec tok/s", "same output as AR"],
          [(b, r["turns"], f"{r['tau']:.2f}", f"{r['speedup']:.2f}x", f"{r['ar_tokens_per_s']:.1f}",
            f"{r['spec_tokens_per_s']:.1f}", r.get("same_output_as_ar")) for b, r in spec["engine"].items()])
kname, kern = load("bench_kernels.json")
if kern:
    table(["op", "impl", "fwd+bwd (s)", "peak extra MiB"],
          [(r["op"], r["impl"], r["fwd_bwd_s"], r["peak_extra_mib"]) for r in kern["results"]])""",
    """\
if name:
    for png in nbtools.figure("speculative_eval.py", name, "{out}"):
        display(Image(str(png)))""",
    "**Reading the numbers.** The paper's tau 3.86 is for an 8B target with a draft trained on far more data "
    "on GPUs; our target is a 135M model whose verify cost on a shared CPU is close to linear in the number "
    "of verified tokens, so tau and speed-up are reported separately and the verdicts above use our own "
    "targets (tau >= 3.5, >= 2x).",
)

SOPR_RAG = notebook(
    "SOPRAG: retrieval over standard operating procedures",
    "SOPRAG (entity / causal / flow experts, an LLM gate, procedure pruning) against lexical, dense, hybrid "
    "and graph baselines on the prometheus-operator runbooks (dev and near-twin dev-hard query sets).\n\n"
    "* `make repro-sopr_rag SCALE=small`: `sopr_rag-eval` -> `sopr_rag_eval.json` (~6 min first run)\n"
    "* `make repro-sopr_rag SCALE=full`: plus LLM-judged utility and the latency bench (~1 h)",
    "`tiny` (CI): index one domain of the fixture SOP corpus and answer its queries with SOPRAG through the "
    "CLI; `small` runs `make repro-sopr_rag SCALE=small`.",
    """\
if LIVE == "small":
    nbtools.run(["make", "repro-sopr_rag", "SCALE=small"], timeout=3 * 3600)
elif LIVE == "tiny":
    import shutil
    fixtures, tmp = nbtools.repo_root() / "tests" / "fixtures", Path(tempfile.mkdtemp())
    shutil.copytree(fixtures / "sop_corpus" / "datacenter", tmp / "corpus" / "datacenter")
    queries = [json.loads(line) for line in (fixtures / "sop_queries.jsonl").read_text().splitlines() if line.strip()]
    queries = [q for q in queries if all(d.startswith("datacenter/") for d in q["gold_docs"])]
    (tmp / "queries.jsonl").write_text("\\n".join(json.dumps(q) for q in queries) + "\\n")
    nbtools.python("-m", "sopr_rag", "index", str(tmp / "corpus"), "--out", str(tmp / "index"))
    nbtools.python("-m", "sopr_rag", "search", "--index", str(tmp / "index"), "--queries", str(tmp / "queries.jsonl"),
                   "--top-k", "3", "--out", str(tmp / "results.jsonl"), "--method", "soprag")
    found = {r["id"]: r for r in map(json.loads, (tmp / "results.jsonl").read_text().splitlines())}
    table(["query", "gold", "SOPRAG top-1", "hit@1"],
          [(q["query"][:70], q["gold_docs"][0], found[q["id"]]["ranked_docs"][0],
            found[q["id"]]["ranked_docs"][0] in q["gold_docs"]) for q in queries])""",
    "soprag",
    """\
name, rag = load("sopr_rag_eval.json")
if rag:
    for qname, qset in rag["query_sets"].items():
        display(Markdown(f"**{qname}** ({qset['n']} queries)"))
        table(["method", "MRR", "Hit@1", "step acc"],
              [(m, f"{r['overall']['mrr']:.3f}", f"{r['overall']['hit@1']:.3f}",
                f"{r['overall']['step_acc']:.3f}" if "step_acc" in r["overall"] else "-")
               for m, r in qset["methods"].items()])""",
    """\
if name:
    for png in nbtools.figure("sopr_rag_by_intent.py", name, "--out-dir", "{out}"):
        display(Image(str(png)))""",
    "**Reading the numbers.** Rows named `soprag[...]` are ablations. The verdicts compare SOPRAG with the "
    "best baseline *per query set and group*, so a tie or a loss anywhere shows up as not met.",
)

SPARSE_ALIGN = notebook(
    "SIA: sparse inference-time alignment",
    "Steer SmolLM2 with a distilled value model only at the tokens where it matters (20-40% of steps), "
    "against dense steering (every token), random-sparse steering and best-of-N.\n\n"
    "* `make repro-sparse_align SCALE=small`: toy-size pipeline -> `sparse_align_eval_small.json` (~15 min)\n"
    "* `make repro-sparse_align SCALE=full`: the reported run -> `sparse_align_eval_full.json` (~1 h on 2 cores)",
    "`tiny` (CI): the first pipeline stage (distillation: SmolLM2 samples scored by the VADER teacher) on 2 "
    "prompts, into a temp folder; `small` runs `make repro-sparse_align SCALE=small`.",
    """\
if LIVE == "small":
    nbtools.run(["make", "repro-sparse_align", "SCALE=small"], timeout=3 * 3600)
elif LIVE == "tiny":
    tmp = Path(tempfile.mkdtemp())
    nbtools.python("-m", "sparse_align", "distill", "--config", "experiments/configs/sparse_align/small.yaml",
                   "threads=1", "name=nb-tiny", f"run_dir={tmp}", "distill.num_prompts=2",
                   "distill.samples_per_prompt=2", "distill.max_new_tokens=8")
    samples = [json.loads(line) for line in (tmp / "distill.jsonl").read_text().splitlines() if line.strip()]
    table(["prompt", "SmolLM2 sample", "teacher reward"],
          [(s["prompt"], repr(s["response"]), f"{s['reward']:.3f}") for s in samples])""",
    "sia",
    """\
name, sia = load("sparse_align_eval_full.json", "sparse_align_eval_small.json")
if sia:
    m = sia["meta"]
    print(f"{name}: {m['num_prompts']} prompts x {m['max_new_tokens']} tokens, teacher {m['teacher']}")
    table(["method", "family", "target rate", "steered", "reward (95% CI)", "wall s", "value calls/token"],
          [(r["method"], r["family"], r.get("target_rate", "-"),
            f"{r['steered_fraction']:.2f}" if isinstance(r.get("steered_fraction"), float) else "-",
            f"{r['reward']:.3f} ± {r['reward_ci95']:.3f}", f"{r['wall_s']:.1f}",
            f"{r.get('value_calls_per_token', 0):.2f}") for r in sia["methods"]])""",
    """\
if name:
    for png in nbtools.figure("sparse_align_reward_vs_cost.py", name):
        display(Image(str(png)))""",
    "**Reading the numbers.** \"Within CI\" means SIA's reward is at least dense's reward minus dense's 95% "
    "CI half-width; added wall time is measured over the unsteered base run on the same machine.",
)


def main() -> None:
    for name, nb in (("speculative", SPECULATIVE), ("sopr_rag", SOPR_RAG), ("sparse_align", SPARSE_ALIGN)):
        nbformat.validate(nb)
        nbformat.write(nb, HERE / f"{name}.ipynb")
        print(HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main()
