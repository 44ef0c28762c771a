"""Fault injection for runtime/: damaged checkpoints, non-finite settings, changed configs on resume."""

import json

import pytest
import torch

from runtime.checkpoint import CHECKSUMS, CheckpointCorruptError, CheckpointManager, rescale_base_lr
from runtime.config import ConfigError, StrictModel, build_config, check_resume_config, load_config


def _save(mgr, step):
    mgr.save(step, tensors={"model": {"w": torch.full((64,), float(step))}}, state={"step": step, "t": torch.ones(3)})


def _truncate(path, keep=10):
    data = path.read_bytes()
    path.write_bytes(data[:keep])


def test_truncated_newest_checkpoint_falls_back_to_older_and_names_file(tmp_path):
    mgr = CheckpointManager(tmp_path, keep=2)
    _save(mgr, 1)
    _save(mgr, 2)
    bad = mgr.path_for(2) / "model.safetensors"
    _truncate(bad)
    ck = mgr.load()
    assert ck.step == 1 and torch.equal(ck.tensors["model"]["w"], torch.full((64,), 1.0))
    assert len(ck.skipped) == 1 and str(bad) in ck.skipped[0] and "size" in ck.skipped[0]
    assert mgr.steps() == [1]  # the corrupt one was moved aside: rotation and later resumes never pick it
    assert any(p.name.startswith("step_00000002.corrupt-") for p in tmp_path.iterdir())
    _save(mgr, 2)  # training continues and writes step 2 again
    assert mgr.load().step == 2


def test_same_size_bit_flip_is_caught_by_checksum(tmp_path):
    mgr = CheckpointManager(tmp_path, keep=3)
    _save(mgr, 1)
    _save(mgr, 2)
    f = mgr.path_for(2) / "state.json"
    raw = bytearray(f.read_bytes())
    i = raw.index(b'"step": 2')
    raw[i + 8] = ord("7")  # still valid JSON of the same size: only the checksum can tell
    f.write_bytes(bytes(raw))
    assert "sha256" in mgr.verify(2)
    ck = mgr.load()
    assert ck.step == 1 and "state.json" in ck.skipped[0]


def test_damaged_checksums_file_is_caught(tmp_path):
    mgr = CheckpointManager(tmp_path)
    _save(mgr, 1)
    _save(mgr, 2)
    _truncate(mgr.path_for(2) / CHECKSUMS)
    assert mgr.load().step == 1


def test_checkpoint_without_checksums_is_checked_by_loading(tmp_path):
    """Checkpoints written before checksums existed: a truncated one still fails over to the older."""
    mgr = CheckpointManager(tmp_path)
    _save(mgr, 1)
    _save(mgr, 2)
    for step in (1, 2):
        (mgr.path_for(step) / CHECKSUMS).unlink()
    assert mgr.verify(2) is None and mgr.load(quarantine=False).step == 2
    _truncate(mgr.path_for(2) / "model.safetensors", keep=200)
    ck = mgr.load()
    assert ck.step == 1 and "cannot be loaded" in ck.skipped[0]


def test_explicit_corrupt_step_and_all_corrupt_raise_naming_files(tmp_path):
    mgr = CheckpointManager(tmp_path)
    _save(mgr, 1)
    _save(mgr, 2)
    _truncate(mgr.path_for(2) / "model.safetensors")
    with pytest.raises(CheckpointCorruptError, match="step_00000002/model.safetensors"):
        mgr.load(2)
    _truncate(mgr.path_for(1) / "state.safetensors")
    with pytest.raises(CheckpointCorruptError, match="no checkpoint .* verifies.*step_00000001/state.safetensors"):
        mgr.load()
    with pytest.raises(FileNotFoundError):
        mgr.load(7)


def test_checksums_written_for_every_file(tmp_path):
    mgr = CheckpointManager(tmp_path)
    _save(mgr, 3)
    record = json.loads((mgr.path_for(3) / CHECKSUMS).read_text())
    assert set(record["files"]) == {"model.safetensors", "state.safetensors", "state.json"}
    assert mgr.verify(3) is None


class Weights(StrictModel):
    lr: float = 1e-3


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", ".inf"])
def test_non_finite_floats_are_rejected_by_name(value):
    with pytest.raises(ConfigError, match="lr"):
        load_config(Weights, None, [f"lr={value}"])
    with pytest.raises(ConfigError, match="lr"):
        build_config(Weights, {"lr": float(value.lstrip("."))})


class Optim(StrictModel):
    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.95)


class Run(StrictModel):
    optim: Optim = Optim()
    max_steps: int = 10
    seed: int = 0


def test_resume_config_refuses_changes_by_name_and_returns_allowed_ones():
    stored = Run().model_dump(mode="json")  # what the checkpoint recorded (tuples became lists)
    assert check_resume_config(stored, Run()) == {}
    changed = Run(max_steps=20, optim=Optim(lr=0.5))
    with pytest.raises(ConfigError, match=r"optim.lr: 0.0003 in the checkpoint, 0.5 now") as e:
        check_resume_config(stored, changed, may_change=["max_steps"])
    assert "max_steps" not in str(e.value).split("\n", 1)[1]  # only the refused keys are listed
    assert check_resume_config(stored, changed, may_change=["max_steps", "optim"]) == {
        "max_steps": (10, 20), "optim.lr": (3e-4, 0.5)}


def test_rescale_base_lr_continues_the_schedule_at_the_new_peak():
    from transformers import get_cosine_schedule_with_warmup

    def run(lr, steps):
        p = torch.nn.Parameter(torch.zeros(2))
        opt = torch.optim.AdamW([p], lr=lr)
        sched = get_cosine_schedule_with_warmup(opt, 2, 10)
        for _ in range(steps):
            opt.step()
            sched.step()
        return opt, sched

    opt, sched = run(1e-3, 4)
    old = rescale_base_lr(opt, sched, 0.5)
    ref_opt, ref_sched = run(0.5, 4)
    assert old == pytest.approx(1e-3)
    assert opt.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"])
    opt.step()
    sched.step()
    ref_opt.step()
    ref_sched.step()
    assert sched.get_last_lr()[0] == pytest.approx(ref_sched.get_last_lr()[0])
    with pytest.raises(ValueError, match="finite number > 0"):
        rescale_base_lr(opt, sched, -1.0)
