"""Distributed init from the torchrun environment, megatron-core TP groups, clean teardown.

gloo on CPU, nccl on CUDA. Megatron pieces that hard-require CUDA (the CUDA RNG tracker) get a CPU
path here, so model code never patches megatron itself.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world() -> tuple[int, int, int]:
    return (int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
            int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(backend: str | None = None, *, timeout_s: float = 600.0) -> DistInfo:
    """Init the default process group from torchrun's env (single process: a 1-rank group)."""
    rank, world, local = env_world()
    cuda = torch.cuda.is_available() and os.environ.get("LLMSYS_DEVICE", "") != "cpu"
    backend = backend or ("nccl" if cuda else "gloo")
    device = torch.device("cuda", local) if backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()) if world == 1 else "29500")
        dist.init_process_group(backend=backend, rank=rank, world_size=world, timeout=timedelta(seconds=timeout_s))
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local,
                    backend=dist.get_backend(), device=device)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def init_tensor_parallel(tp: int, *, seed: int = 1234) -> None:
    """megatron-core parallel_state with TP=`tp` (DP = world // tp), plus a working RNG tracker."""
    from megatron.core import parallel_state, tensor_parallel

    world = world_size()
    if world % tp:
        raise ValueError(f"world size {world} is not divisible by tensor_parallel={tp}")
    if not parallel_state.model_parallel_is_initialized():
        parallel_state.initialize_model_parallel(tensor_model_parallel_size=tp)
    if torch.cuda.is_available():
        tensor_parallel.model_parallel_cuda_manual_seed(seed)
    else:
        # megatron's tracker forks the CUDA generator; on CPU install a CPU-generator tracker instead
        _install_cpu_rng_tracker(seed)


def _install_cpu_rng_tracker(seed: int) -> None:
    from megatron.core import parallel_state
    from megatron.core.tensor_parallel import random as mrandom

    if type(mrandom._CUDA_RNG_STATE_TRACKER).__name__ == "CPURNGTracker":
        return

    class CPURNGTracker(mrandom.CudaRNGStatesTracker):
        """Same API as megatron's tracker, forking the CPU generator (weights init, dropout)."""

        def add(self, name: str, seed_: int) -> None:
            gen = torch.Generator().manual_seed(seed_)
            self.states_[name] = gen.get_state()
            self.seeds_.add(seed_)

        @contextmanager
        def fork(self, name: str = mrandom._MODEL_PARALLEL_RNG_TRACKER_NAME):
            if name not in self.states_:
                raise KeyError(f"RNG state {name} is not added")
            saved = torch.get_rng_state()
            torch.set_rng_state(self.states_[name])
            try:
                yield
            finally:
                self.states_[name] = torch.get_rng_state()
                torch.set_rng_state(saved)

    tracker = CPURNGTracker()
    tp_rank = parallel_state.get_tensor_model_parallel_rank()
    tracker.add(mrandom._MODEL_PARALLEL_RNG_TRACKER_NAME, seed + 2718 + tp_rank)
    tracker.add(mrandom._DATA_PARALLEL_RNG_TRACKER_NAME, seed)
    mrandom._CUDA_RNG_STATE_TRACKER = tracker
    mrandom._CUDA_RNG_STATE_TRACKER_INITIALIZED = True  # get_cuda_rng_tracker() now returns it


def destroy() -> None:
    """Tear down megatron groups and the default group (safe to call twice)."""
    try:
        from megatron.core import parallel_state

        if parallel_state.model_parallel_is_initialized():
            parallel_state.destroy_model_parallel()
    except ImportError:
        pass
    if dist.is_initialized():
        dist.destroy_process_group()
