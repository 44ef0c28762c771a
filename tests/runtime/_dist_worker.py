"""torchrun worker for test_distributed: gloo init, collectives, megatron TP=2 layers vs dense."""

import sys

import torch
import torch.distributed as dist

from runtime.distributed import destroy, init_distributed, init_tensor_parallel, rank, world_size


def main(out_path: str) -> None:
    info = init_distributed()
    assert info.backend == "gloo" and info.world_size == 2 and world_size() == 2 and rank() == info.rank
    t = torch.tensor([float(info.rank + 1)])
    dist.all_reduce(t)
    assert t.item() == 3.0

    init_tensor_parallel(2, seed=7)
    from megatron.core import parallel_state as ps
    from megatron.core.model_parallel_config import ModelParallelConfig
    from megatron.core.tensor_parallel import ColumnParallelLinear, RowParallelLinear, get_cuda_rng_tracker

    assert ps.get_tensor_model_parallel_world_size() == 2
    cfg = ModelParallelConfig(tensor_model_parallel_size=2, use_cpu_initialization=True, params_dtype=torch.float32)
    torch.manual_seed(0)  # same dense weights on every rank
    w1, w2, x = torch.randn(8, 6), torch.randn(5, 8), torch.randn(3, 6)
    col = ColumnParallelLinear(6, 8, config=cfg, init_method=torch.nn.init.zeros_, bias=False, gather_output=False)
    row = RowParallelLinear(8, 5, config=cfg, init_method=torch.nn.init.zeros_, bias=False,
                            input_is_parallel=True, skip_bias_add=True)
    r = ps.get_tensor_model_parallel_rank()
    with torch.no_grad():
        col.weight.copy_(w1[r * 4:(r + 1) * 4])
        row.weight.copy_(w2[:, r * 4:(r + 1) * 4])
    y, _ = row(col(x)[0])
    err = (y - x @ w1.t() @ w2.t()).abs().max().item()
    with get_cuda_rng_tracker().fork():  # the CPU tracker must work where megatron forks RNG
        torch.rand(1)
    destroy()
    if info.rank == 0:
        with open(out_path, "w") as fh:
            fh.write(f"{err}\n")


if __name__ == "__main__":
    main(sys.argv[1])
