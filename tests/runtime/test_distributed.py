from pathlib import Path

import pytest

from tests.dist_utils import torchrun


@pytest.mark.dist
def test_two_rank_gloo_and_megatron_tp(tmp_path):
    out = tmp_path / "err.txt"
    res = torchrun(Path(__file__).with_name("_dist_worker.py"), str(out), nproc=2)
    assert res.returncode == 0, res.stderr[-3000:]
    assert float(out.read_text()) < 1e-5  # TP=2 column->row parallel equals the dense product


def test_single_process_init_and_destroy():
    import torch.distributed as dist

    from runtime.distributed import destroy, init_distributed

    info = init_distributed()
    assert info.world_size == 1 and info.is_main and dist.is_initialized()
    destroy()
    destroy()  # idempotent
    assert not dist.is_initialized()
