"""The evaluation pipeline end to end on a tiny random target + a random exported EAGLE-3 draft."""

import json

import pytest
import torch

from runtime.paths import repo_root
from speculative.evaluate.benchmarks import load_benchmark
from speculative.evaluate.config import SpecEvalConfig
from speculative.evaluate.metrics import acceptance_by_position
from speculative.export import export_draft
from speculative.model import Eagle3Draft, Eagle3DraftConfig
from tests.conftest import make_tiny_llama

CONFIGS = repo_root() / "experiments" / "configs" / "speculative"


def test_acceptance_by_position():
    acc = acceptance_by_position([0, 1, 3, 3], depth=3)
    assert acc["reach"] == [0.75, 0.5, 0.5]
    assert acc["conditional"] == [0.75, pytest.approx(2 / 3), 1.0]


def test_summary_round_cost_is_the_break_even_tau():
    from speculative.decode.engine import DecodeStats
    from speculative.evaluate.metrics import summarize

    # AR: 11 tokens, 10 decode steps in 1.0 s -> 0.1 s per step. Spec: 4 rounds (tau 2.5), each 0.2 s of
    # draft+verify -> a round costs 2 AR steps; speed-up tau / round cost = 1.25 on the decode phase.
    ar = DecodeStats(new_tokens=11, accepted=[0] * 10, decode_s=1.0)
    spec = DecodeStats(new_tokens=11, accepted=[2, 1, 3, 0], decode_s=0.8, draft_s=0.3, verify_s=0.5)
    res = summarize([spec], [ar], depth=3)
    assert res["rounds"] == 4 and res["tau"] == 2.5
    assert abs(res["ar_step_s"] - 0.1) < 1e-12 and abs(res["round_cost_ar_steps"] - 2.0) < 1e-9
    assert abs(res["decode_speedup"] - res["tau"] / res["round_cost_ar_steps"]) < 1e-9


def test_benchmarks_have_the_expected_sizes():
    assert len(load_benchmark("mtbench")) == 80 and all(len(i.turns) == 2 for i in load_benchmark("mtbench"))
    assert len(load_benchmark("humaneval")) == 164
    held = load_benchmark("sharegpt", 5, train_window=4016)
    assert len(held) == 5 and all(i.turns[0].strip() for i in held)


@pytest.fixture(scope="module")
def tiny_assets(tmp_path_factory, smollm2_tokenizer):
    root = tmp_path_factory.mktemp("tiny")
    target = make_tiny_llama(vocab_size=len(smollm2_tokenizer), layers=6, initializer_range=0.2)
    target.generation_config.eos_token_id = 2
    target.save_pretrained(root / "target")
    smollm2_tokenizer.save_pretrained(root / "target")
    cfg = Eagle3DraftConfig.from_target(target.config, draft_vocab_size=2000)
    torch.manual_seed(0)
    export_draft(Eagle3Draft(cfg, embed_weight=target.get_input_embeddings().weight.detach()), root / "draft")
    return root


def test_evaluate_writes_json_and_markdown(tiny_assets, tmp_path):
    from speculative.evaluate.run import evaluate

    cfg = SpecEvalConfig(target=str(tiny_assets / "target"), draft_dir=str(tiny_assets / "draft"),
                     benchmarks={"mtbench": 2, "humaneval": 1}, decode={"mode": "chain", "depth": 3,
                                                                       "max_new_tokens": 8},
                     sweep=[{"mode": "tree", "depth": 3, "topk": 2, "num_draft_tokens": 4}], sweep_prompts=1,
                     vllm={"enabled": False}, threads=1, out_json=str(tmp_path / "e.json"),
                     out_md=str(tmp_path / "e.md"))
    report = evaluate(cfg)
    saved = json.loads((tmp_path / "e.json").read_text())
    assert saved["engine"].keys() == {"mtbench", "humaneval"}
    mt = saved["engine"]["mtbench"]
    assert mt["turns"] == 4  # two questions, both turns
    assert mt["same_output_as_ar"] is True
    assert 1.0 <= mt["tau"] <= 4.0 and len(mt["acceptance"]["reach"]) == 3
    assert mt["spec_tokens_per_s"] > 0 and mt["ar_tokens_per_s"] > 0
    assert report["sweep"][0]["num_draft_tokens"] == 4
    md = (tmp_path / "e.md").read_text()
    assert "| mtbench | 4 |" in md and "| tree | 3 | 2 | 4 |" in md


def test_missing_draft_is_a_clear_error(tmp_path):
    from speculative.evaluate.run import evaluate

    with pytest.raises(FileNotFoundError, match="speculative-bundle"):
        evaluate(SpecEvalConfig(draft_dir=str(tmp_path / "nothing"), vllm={"enabled": False}, threads=1))


def test_model_card_renders_from_bundle_records(tiny_assets, tmp_path):
    from speculative.evaluate.model_card import render_model_card

    bundle = {"out_dir": str(tmp_path), "config": {"target": "smollm2-135m-instruct", "train_config": "x.yaml"},
              "train": {"command": "python -m speculative train --config x.yaml", "seconds": 7200},
              "started": "t0", "finished": "t1"}
    draft_cfg = json.loads((tiny_assets / "draft" / "config.json").read_text())
    evaluation = {"config": {"decode": {"mode": "chain", "depth": 3}}, "engine": {
        "mtbench": {"turns": 4, "tau": 2.5, "acceptance": {"reach": [0.8, 0.5, 0.2]}, "spec_tokens_per_s": 30.0,
                    "ar_tokens_per_s": 20.0, "speedup": 1.5, "same_output_as_ar": True}}}
    metrics = [{"step": 399, "tokens": 3600, "tokens_per_s": 1.0},  # two resumed runs: 1 h + 0.5 h of steps
               {"step": 400, "loss": 1.2, "acc_0": 0.6, "accept_len": 2.9, "tokens": 900, "tokens_per_s": 0.5}]
    card = render_model_card(bundle, draft_cfg, metrics, evaluation)
    assert "optimizer steps: 400" in card and "2.00 h" in card and "resumes included): 1.50 h" in card
    assert "tokens seen: 4,500" in card
    assert "| mtbench | 4 | 2.50 |" in card and "python -m speculative train --config x.yaml" in card
    assert "- human-written" not in card and "held out" not in card
    bundle["config"] |= {"human": {"source": "sharegpt", "offset": 2500, "conversations": 2200}, "train_kind": "online"}
    metrics[-1] |= {"val_acc_0": 0.41, "val_accept_len": 1.66, "val_rows": 7000}
    card = render_model_card(bundle, draft_cfg, metrics, evaluation)
    assert "- human-written: 2200 conversations of `sharegpt` (from conversation 2500)" in card and "target online" in card
    assert "held out (7000 rows never trained on), step 400: acc_0 0.410, simulated accept_len 1.660" in card
    assert "target confidence" not in card
    band = {"conf_from": 0.0, "conf_to": 0.3, "share": 0.25, "rows": 10}
    bands = {"0": [band | {"acc_0": 0.1}, band | {"conf_from": 0.3, "conf_to": 1.0, "share": 0.75, "acc_0": 0.5}],
             "400": [band | {"acc_0": 0.2}, band | {"conf_from": 0.3, "conf_to": 1.0, "share": 0.75, "acc_0": 0.6}]}
    card = render_model_card(bundle, draft_cfg, metrics, evaluation, bands)
    assert "| target confidence | share | acc_0 step 0 | acc_0 step 400 |" in card
    assert "| 0.0-0.3 | 25% | 0.100 | 0.200 |" in card and "| 0.3-1.0 | 75% | 0.500 | 0.600 |" in card


@pytest.mark.parametrize("name", ["eval_smollm2.yaml", "eval_quick.yaml", "eval_bundle_cpu.yaml", "bundle_smollm2.yaml",
                                  "bundle_qwen_coder.yaml"])
def test_shipped_configs_load(name):
    from pathlib import Path

    from runtime.config import load_config
    from speculative.evaluate.bundle import BundleConfig

    path = Path(__file__).resolve().parents[3] / "experiments" / "configs" / "speculative" / name
    cfg = load_config(BundleConfig if name.startswith("bundle") else SpecEvalConfig, path)
    if isinstance(cfg, SpecEvalConfig):
        assert cfg.decode.mode == "chain" and cfg.sweep
    else:
        from speculative.parallel.config import DistTrainConfig

        # the bundle's stage configs ship too, load, and name the bundle's target
        train = load_config(DistTrainConfig, path.parent / Path(cfg.train_config).name)
        evaluation = load_config(SpecEvalConfig, path.parent / Path(cfg.eval_config).name)
        assert train.target.model == evaluation.target == cfg.target


def test_bundle_refuses_a_stage_without_its_config():
    from runtime.config import ConfigError, load_config
    from speculative.evaluate.bundle import BundleConfig

    with pytest.raises(ConfigError, match=r"train_config \(stage train\), eval_config \(stage evaluate\)"):
        load_config(BundleConfig, None, ["stages=[train,evaluate]"])
    with pytest.raises(ConfigError, match=r"prepare_config \(stage prepare\)"):
        load_config(BundleConfig, None, ["stages=[prepare]"])
    assert load_config(BundleConfig, None, ["stages=[prepare]", "train_kind=online"]).prepare_config is None


def test_unknown_config_key_fails():
    from runtime.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="unknown key 'decode.depht'"):
        load_config(SpecEvalConfig, None, ["decode.depht=3"])


def test_bundle_chains_train_then_eval_and_writes_the_card(tmp_path, monkeypatch, tiny_assets):
    """The pipeline's wiring (commands, overrides, records, card) with the two long steps stubbed."""
    import shutil
    import subprocess

    from speculative.evaluate import bundle as bundle_mod
    from speculative.evaluate import model_card

    calls = []
    real_run = subprocess.run

    def fake_run(cmd, check=False, **kw):
        if cmd[1:3] != ["-m", "speculative"]:
            return real_run(cmd, check=check, **kw)  # e.g. git for the records' provenance
        calls.append(cmd)
        if cmd[3] == "train":  # what the trainer leaves behind: metrics + export
            shutil.copytree(tiny_assets / "draft", tmp_path / "b" / "train" / "export")
            (tmp_path / "b" / "train" / "metrics.jsonl").write_text('{"step": 3, "loss": 2.0}\n')
        else:
            (tmp_path / "eval.json").write_text(json.dumps({"config": {"decode": {"mode": "chain", "depth": 3}},
                                                            "engine": {}}))

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(model_card, "results_dir", lambda: tmp_path)
    cfg = bundle_mod.BundleConfig(out_dir=str(tmp_path / "b"), eval_overrides=[f"out_json={tmp_path / 'eval.json'}"],
                                  regenerate={"enabled": False}, stages=["train", "evaluate"],
                                  train_config=str(CONFIGS / "bundle_train_smollm2.yaml"),
                                  eval_config=str(CONFIGS / "eval_smollm2.yaml"), train_overrides=["max_steps=3"])
    record = bundle_mod.run_bundle(cfg)
    train_cmd, eval_cmd = calls
    assert f"out_dir={tmp_path / 'b' / 'train'}" in train_cmd and "export=true" in train_cmd
    assert f"draft_dir={tmp_path / 'b' / 'train' / 'export'}" in eval_cmd
    assert record["train"]["seconds"] >= 0 and record["eval_json"] == str(tmp_path / "eval.json")
    card = (tmp_path / "b" / "README.md").read_text()
    assert "optimizer steps: 3" in card and "-m speculative train" in card
    assert "max_steps=3" in train_cmd and "overrides ['max_steps=3']" in card
    # a later evaluate-only run (no overrides in its config) keeps the card's record of what trained the weights
    calls.clear()
    bundle_mod.run_bundle(cfg.model_copy(update={"stages": ["evaluate"], "train_overrides": []}))
    assert "overrides ['max_steps=3']" in (tmp_path / "b" / "README.md").read_text()
    assert (tmp_path / "speculative_model_card_b.md").read_text() == card  # named after the bundle (no ship_dir)


def test_bundle_online_trains_on_human_then_self_distilled_conversations(tmp_path, monkeypatch):
    """train_kind online + human mix: no prepare stage, the HF target online, the mixed JSONL in data order."""
    import subprocess

    from speculative.evaluate import bundle as bundle_mod

    def conv(tag: str, i: int) -> dict:
        return {"messages": [{"role": "user", "content": f"{tag} question {i}"},
                             {"role": "assistant", "content": f"{tag} answer {i}"}]}

    for name, tag, n in (("people.jsonl", "human", 6), ("own.jsonl", "own", 3)):
        (tmp_path / name).write_text("".join(json.dumps(conv(tag, i)) + "\n" for i in range(n)))
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, check=False, **kw: calls.append(cmd))
    cfg = bundle_mod.BundleConfig(
        out_dir=str(tmp_path / "b"), regenerate={"enabled": False, "source": str(tmp_path / "own.jsonl")},
        human={"source": str(tmp_path / "people.jsonl"), "offset": 2, "conversations": 3}, train_kind="online",
        stages=["prepare", "train"], train_config=str(CONFIGS / "bundle_train_smollm2.yaml"))
    bundle_mod.run_bundle(cfg)
    (train_cmd,) = calls  # no prepare_hidden_states run
    mix = tmp_path / "b" / "train_data.jsonl"
    assert "target_kind=hf" in train_cmd and f"data.source={mix}" in train_cmd
    assert not any(a.startswith("offline_dir=") for a in train_cmd)
    rows = [json.loads(line)["messages"][0]["content"] for line in mix.read_text().splitlines()]
    assert rows == ["human question 2", "human question 3", "human question 4", "own question 0", "own question 1",
                    "own question 2"]
    with pytest.raises(ValueError, match="3 asked for"):
        bundle_mod.run_bundle(cfg.model_copy(update={"human": bundle_mod.HumanDataConfig(
            source=str(tmp_path / "people.jsonl"), offset=4, conversations=3)}))


def test_bundle_starts_from_scratch_until_a_draft_is_shipped(tmp_path, monkeypatch):
    """init_from is passed to training only when it holds an export (the first build of a new bundle has none);
    with no out_dir the run lives in the cache under the shipped folder's name."""
    import subprocess

    from speculative.evaluate import bundle as bundle_mod

    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, check=False, **kw: calls.append(cmd))
    monkeypatch.setenv("LLMSYS_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "own.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}))
    cfg = bundle_mod.BundleConfig(regenerate={"enabled": False, "source": str(data)}, train_kind="online",
                                  stages=["train"], train_config=str(CONFIGS / "bundle_train_smollm2.yaml"),
                                  ship_dir=str(tmp_path / "drafts" / "new-draft"), init_from=str(tmp_path / "drafts" / "new-draft"))
    assert cfg.out() == tmp_path / "cache" / "bundles" / "new-draft"
    bundle_mod.run_bundle(cfg)
    assert not any(a.startswith("init_from=") for a in calls[-1])
    (tmp_path / "drafts" / "new-draft").mkdir(parents=True)
    (tmp_path / "drafts" / "new-draft" / "config.json").write_text("{}")
    bundle_mod.run_bundle(cfg.model_copy(update={"ship_dir": ""}))  # (no model card for a stub export)
    assert f"init_from={tmp_path / 'drafts' / 'new-draft'}" in calls[-1]


def test_profile_measures_engine_hf_and_linear_latency():
    from speculative.evaluate.profile import linear_latency, raw_hf_latency, target_latency

    from .helpers import tiny_target

    model = tiny_target()
    engine = target_latency(model, context=8, sizes=[1, 4], repeats=1)
    raw = raw_hf_latency(model, context=8, sizes=[1, 4], repeats=1)
    lin = linear_latency(model, sizes=[1, 4], repeats=1)
    assert set(engine) == set(raw) == {1, 4} and all(v > 0 for v in [*engine.values(), *raw.values()])
    assert set(lin) == {"mlp_up", "lm_head"} and all(set(t) == {1, 4} for t in lin.values())


def test_side_by_side_methods_and_a_user_prompt_file(tiny_assets, tmp_path):
    """AR, the main EAGLE-3 chain and extra methods (tree, lookup, hybrid) on the same turns, a JSONL prompt file
    as a benchmark, first turns only: every method's greedy output equals AR, acceptance is split by source."""
    from speculative.evaluate.run import evaluate

    prompts = tmp_path / "mine.jsonl"
    prompts.write_text('{"id": "r", "prompt": "say a b c a b c a b c a b c"}\nnot json\n'
                       '{"id": "s", "turns": ["one", "two"]}\n')
    cfg = SpecEvalConfig(target=str(tiny_assets / "target"), draft_dir=str(tiny_assets / "draft"),
                     benchmarks={"mtbench": 1, "humaneval": 0}, prompt_files={"mine": {"path": str(prompts)}},
                     max_turns=1, decode={"mode": "chain", "depth": 3, "max_new_tokens": 12},
                     methods=[{"name": "tree", "decode": {"mode": "tree", "depth": 3, "topk": 2, "num_draft_tokens": 4}},
                              {"name": "lookup", "drafter": "lookup", "decode": {"lookup": {"k": 4, "min_n": 1}}},
                              {"name": "hybrid", "drafter": "hybrid", "decode": {"max_tree_tokens": 5}}],
                     vllm={"enabled": False}, threads=1, out_json=str(tmp_path / "c.json"), out_md=str(tmp_path / "c.md"))
    evaluate(cfg)
    saved = json.loads((tmp_path / "c.json").read_text())
    assert saved["engine"].keys() == {"mtbench", "mine"}  # humaneval: 0 skips it
    assert saved["engine"]["mtbench"]["turns"] == 1 and saved["engine"]["mine"]["turns"] == 2  # first turns only
    assert saved["prompt_files"]["mine"]["skipped"] == 1 and saved["prompt_files"]["mine"]["items"] == 2
    for bench in ("mtbench", "mine"):
        methods = saved["methods"][bench]
        assert methods.keys() == {"tree", "lookup", "hybrid"}
        assert all(m["same_output_as_ar"] is True for m in methods.values())
        assert methods["lookup"]["sources"]["drafted"]["model"] == 0
        # per-position acceptance up to the longest draft: lookup k = 4; hybrid max(depth 3, default k 5)
        assert len(methods["lookup"]["acceptance"]["reach"]) == 4 and len(methods["hybrid"]["acceptance"]["reach"]) == 5
        assert methods["tree"]["ar_tokens_per_s"] == saved["engine"][bench]["ar_tokens_per_s"]  # the same AR runs
    assert saved["method_info"]["hybrid"]["decode"]["max_tree_tokens"] == 5
    md = (tmp_path / "c.md").read_text()
    assert "| AR (ours) |" in md and "| eagle3 chain d3 |" in md and "| hybrid |" in md and "**mine**" in md


def test_compare_config_loads_and_runs_every_method():
    from pathlib import Path

    from runtime.config import load_config

    path = Path(__file__).resolve().parents[3] / "experiments" / "configs" / "speculative" / "eval_compare.yaml"
    cfg = load_config(SpecEvalConfig, path)
    assert cfg.max_turns == 1 and cfg.decode.max_new_tokens == 128 and cfg.decode.greedy and cfg.threads == 2
    assert {m.drafter for m in cfg.methods} == {"eagle3", "lookup", "hybrid"}
    assert cfg.vllm.enabled and set(cfg.vllm.methods) == {"autoregressive", "eagle3", "ngram"} and cfg.vllm.ngram_sweep
    assert cfg.vllm.prompts_per_benchmark is None and cfg.check_exact


def test_bad_method_override_fails_at_load():
    from runtime.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="methods 'x'"):
        load_config(SpecEvalConfig, None, ["methods=[{name: x, decode: {depht: 3}}]"])


def test_vllm_helpers_acceptance_exactness_and_ngram_pick(monkeypatch):
    from speculative.evaluate import vllm_baselines as vb
    from speculative.evaluate.config import VLLMBaselineConfig

    before = {"num_drafts": 10.0, "num_accepted_tokens": 5.0, "num_accepted_tokens_per_pos": [4.0, 1.0, 0.0]}
    after = {"num_drafts": 20.0, "num_accepted_tokens": 20.0, "num_accepted_tokens_per_pos": [12.0, 6.0, 2.0]}
    acc = vb._acceptance(before, after)
    assert acc["tau"] == 2.5 and acc["acceptance_reach"] == [0.8, 0.5, 0.2]
    assert vb._acceptance(after, after) == {}
    same = vb._same_outputs({"m": [[1, 2], [3]]}, {"m": [[1, 2], [4]]})
    assert same == {"all": False, "mismatched_prompts": {"m": 1}}

    calls = []

    def fake_run(target, prompts, max_new_tokens, spec):
        calls.append((spec, sum(len(p) for p in prompts.values())))
        k = (spec or {}).get("num_speculative_tokens", 0)
        return {"tokens_per_s": {3: 30.0, 5: 40.0, 7: 35.0}.get(k, 20.0), "per_benchmark": {},
                "outputs": {"mtbench": [[1]] * 4}}

    monkeypatch.setattr(vb, "run_vllm", fake_run)
    vcfg = VLLMBaselineConfig(methods=["autoregressive", "ngram"], ngram_sweep_prompts=2,
                              ngram_sweep=[{"num_speculative_tokens": k} for k in (3, 5, 7)])
    out = vb.run_baselines("t", None, {"mtbench": [[{"role": "user", "content": "q"}]] * 4}, 8, vcfg)
    assert [c[1] for c in calls] == [4, 2, 2, 2, 4]  # AR on all, the sweep on 2 prompts, the best on all
    assert out["ngram"]["setting"]["num_speculative_tokens"] == 5 and len(out["ngram_sweep"]) == 3
    assert out["ngram"]["speedup_vs_vllm_ar"] == 2.0 and out["ngram"]["same_output_as_vllm_ar"]["all"] is True
    assert "outputs" not in out["ngram"] and "outputs" not in out["autoregressive"]
