"""kill -9 mid-run, resume, and get exactly the loss curve of an uninterrupted run (tiny target, CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from runtime.logging import read_jsonl
from runtime.paths import repo_root

CONFIG = repo_root() / "experiments" / "configs" / "speculative" / "tiny_random.yaml"


def write_data(path: Path, n: int = 24) -> Path:
    words = "the quick brown fox jumps over a lazy dog while seven small birds sing".split()
    with open(path, "w") as fh:
        for i in range(n):
            q = " ".join(words[(i + j) % len(words)] for j in range(5))
            a = " ".join(words[(3 * i + j) % len(words)] for j in range(12))
            fh.write(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n")
    return path


def launch(target_dir, data, out, throttle=0.0):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LLMSYS_THREADS": "1", "LLMSYS_NO_PROGRESS": "1",
           "PYTHONPATH": str(repo_root()), "LLMSYS_CACHE_DIR": str(Path(out).parent / "cache")}
    cmd = [sys.executable, "-m", "speculative", "train", "--config", str(CONFIG), f"target.model={target_dir}",
           f"data.source={data}", f"out_dir={out}", f"throttle_s={throttle}", "export=true"]
    return subprocess.Popen(cmd, cwd=repo_root(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def losses(out: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_jsonl(out / "metrics.jsonl")}


@pytest.fixture(scope="module")
def runs(spec_tiny_target_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    data = write_data(tmp / "data.jsonl")
    full = launch(spec_tiny_target_dir, data, tmp / "full")
    killed = launch(spec_tiny_target_dir, data, tmp / "killed", throttle=0.5)
    deadline = time.time() + 240
    # kill after step 4 is logged: checkpoint 3 exists, step 4's work is lost and must be redone
    while time.time() < deadline and killed.poll() is None:
        m = tmp / "killed" / "metrics.jsonl"
        if m.is_file() and max(losses(tmp / "killed"), default=0) >= 4:
            break
        time.sleep(0.05)
    assert killed.poll() is None, "the run ended before it could be killed: " + killed.stderr.read().decode()[-2000:]
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    killed_at = max(losses(tmp / "killed"))
    resumed = launch(spec_tiny_target_dir, data, tmp / "killed")
    for p in (full, resumed):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-3000:]
    return tmp, killed_at


def test_resumed_loss_curve_equals_uninterrupted(runs):
    tmp, killed_at = runs
    full, resumed = losses(tmp / "full"), losses(tmp / "killed")
    assert 4 <= killed_at < 12
    assert sorted(full) == sorted(resumed) == list(range(1, 13))
    assert [resumed[s] for s in sorted(resumed)] == [full[s] for s in sorted(full)]  # bit-exact
    # the curve is a real training curve: loss falls on this tiny overfit problem
    assert full[12] < full[1]


def test_checkpoints_rotated_and_export_written(runs):
    tmp, _ = runs
    steps = sorted(p.name for p in (tmp / "killed" / "checkpoints").iterdir())
    assert steps == ["step_00000009", "step_00000012"]  # keep_ckpts: 2
    assert (tmp / "killed" / "export" / "model.safetensors").is_file()
    report = json.loads((tmp / "killed" / "data_report.json").read_text())
    assert report["examples"] == 24 and report["skipped_total"] == 0


def test_export_cli_from_checkpoint(runs, tmp_path):
    from speculative.__main__ import main as speculative_main
    from speculative.export import load_exported_draft

    run_dir, _ = runs
    assert speculative_main(["export", f"run_dir={run_dir / 'killed'}", "step=12", f"out={tmp_path / 'exp'}"]) == 0
    a = load_exported_draft(tmp_path / "exp")
    b = load_exported_draft(run_dir / "killed" / "export")  # written by the trainer at the end
    for (k, x), (_, y) in zip(a.trainable_state_dict().items(), b.trainable_state_dict().items()):
        assert torch.equal(x, y), k


def _resume(run_dir: Path, target_dir, data: Path, *overrides: str):
    from runtime.config import load_config
    from speculative.train.build import build_training
    from speculative.train.config import DraftTrainConfig
    from speculative.train.trainer import DraftTrainer

    cfg = load_config(DraftTrainConfig, CONFIG, [f"target.model={target_dir}", f"data.source={data}", f"out_dir={run_dir}",
                                            "threads=1", *overrides])
    setup = build_training(cfg)
    trainer = DraftTrainer(cfg, setup.target, setup.draft, setup.schedule)
    trainer.maybe_resume()
    return trainer


def test_resume_skips_a_corrupt_newest_checkpoint_and_applies_or_refuses_changes(runs, spec_tiny_target_dir, tmp_path):
    import shutil

    from runtime.config import ConfigError

    src, _ = runs
    run_dir = tmp_path / "run"
    shutil.copytree(src / "killed", run_dir)
    data = src / "data.jsonl"
    newest = max((run_dir / "checkpoints" / "step_00000012").glob("*.safetensors"), key=lambda p: p.stat().st_size)
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # truncated, as by a full disk
    trainer = _resume(run_dir, spec_tiny_target_dir, data)
    assert trainer.step == 9  # the intact older checkpoint, not a crash naming no file
    trainer = _resume(run_dir, spec_tiny_target_dir, data, "optim.lr=0.5")
    assert trainer.scheduler.base_lrs == [0.5]  # applied, not recorded and ignored
    with pytest.raises(ConfigError, match="max_length"):
        _resume(run_dir, spec_tiny_target_dir, data, "data.max_length=48")
