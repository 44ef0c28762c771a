import json
import os
import random
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from runtime.checkpoint import (
    CheckpointManager,
    atomic_write_json,
    atomic_write_text,
    flatten_state,
    rng_state,
    set_rng_state,
    unflatten_state,
)


def test_atomic_write_keeps_old_content_when_write_fails(tmp_path, monkeypatch):
    p = tmp_path / "a.json"
    atomic_write_json(p, {"v": 1})

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(p, "garbage")
    assert json.loads(p.read_text()) == {"v": 1}
    assert [x.name for x in tmp_path.iterdir()] == ["a.json"]  # temp file cleaned up


def test_flatten_roundtrip_with_optimizer_state():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = {"opt": opt.state_dict(), "tuple": (1, "x", None), "rng": rng_state()}
    skel, tensors = flatten_state(state)
    json.dumps(skel)  # skeleton is pure JSON
    back = unflatten_state(json.loads(json.dumps(skel)), tensors)
    opt2 = torch.optim.AdamW(model.parameters(), lr=0.1)
    opt2.load_state_dict(back["opt"])
    for k, v in opt.state_dict()["state"][0].items():
        assert torch.equal(torch.as_tensor(v), torch.as_tensor(opt2.state_dict()["state"][0][k]))
    assert back["tuple"] == (1, "x", None)


def test_rng_roundtrip():
    st = rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(st)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_manager_rotation_and_load(tmp_path):
    mgr = CheckpointManager(tmp_path, keep=2)
    assert mgr.load() is None
    for step in (1, 2, 3):
        mgr.save(step, tensors={"model": {"w": torch.full((2,), float(step))}}, state={"step": step, "t": torch.ones(1)})
    assert mgr.steps() == [2, 3]
    ck = mgr.load()
    assert ck.step == 3 and torch.equal(ck.tensors["model"]["w"], torch.full((2,), 3.0))
    assert torch.equal(ck.state["t"], torch.ones(1))


def test_checkpoint_survives_kill_mid_write(tmp_path):
    """A writer SIGKILLed in the middle of a checkpoint leaves the previous one loadable."""
    mgr = CheckpointManager(tmp_path, keep=3)
    mgr.save(1, tensors={"model": {"w": torch.zeros(4)}}, state={"step": 1})
    script = textwrap.dedent(f"""
        import os, signal, torch
        import runtime.checkpoint as ck
        real = ck.atomic_write_json
        def die(path, obj, **kw):  # tensors already written, metadata not yet: die here
            os.kill(os.getpid(), signal.SIGKILL)
        ck.atomic_write_json = die
        ck.CheckpointManager({str(tmp_path)!r}).save(2, tensors={{"model": {{"w": torch.ones(1 << 20)}}}}, state={{}})
    """)
    r = subprocess.run([sys.executable, "-c", script], cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert r.returncode == -signal.SIGKILL
    assert any(p.name.startswith("step_00000002.tmp-") for p in tmp_path.iterdir())  # half-written leftover
    ck = mgr.load()
    assert ck.step == 1 and torch.equal(ck.tensors["model"]["w"], torch.zeros(4))
    mgr.save(3, state={"step": 3})  # a later save sweeps the dead writer's leftovers
    assert not any(".tmp-" in p.name for p in tmp_path.iterdir())
    assert mgr.steps() == [1, 3]
