"""Build the op libraries for development with ninja (parallel), without touching the install.

    python -m runtime build-ops-dev [cuda=true] [build_dir=DIR]

Prints `export LLMSYS_OPS_LIBRARY=...` (and LLMSYS_OPS_CUDA_LIBRARY) lines for runtime/ops/library.py.
`make setup` (setup.py, runtime._C / runtime._C_cuda) remains the one build used by CI and users.
"""

from __future__ import annotations

import glob
import os

from torch.utils.cpp_extension import load

from runtime.config import StrictModel, config_from_cli

CPU_FLAGS = ["-O3", "-fopenmp", "-mavx2", "-mfma", "-std=c++17"]  # the same flags as setup.py


class BuildDevConfig(StrictModel):
    cuda: bool = False  # also build csrc/cuda (needs torch with CUDA + nvcc)
    build_dir: str = "build/ops_dev"


def main(argv: list[str] | None = None) -> int:
    args = config_from_cli(BuildDevConfig, argv, description=__doc__.splitlines()[0], example="cuda=true")
    os.makedirs(args.build_dir, exist_ok=True)
    load(name="llmsys_C_dev", sources=sorted(glob.glob("csrc/cpu/*.cpp")), extra_cflags=CPU_FLAGS,
         extra_ldflags=["-fopenmp"], build_directory=args.build_dir, is_python_module=False)
    print(f"export LLMSYS_OPS_LIBRARY={os.path.abspath(args.build_dir)}/llmsys_C_dev.so")
    if args.cuda:
        cuda_dir = os.path.join(args.build_dir, "cuda")
        os.makedirs(cuda_dir, exist_ok=True)
        load(name="llmsys_C_cuda_dev", sources=sorted(glob.glob("csrc/cuda/*.cpp") + glob.glob("csrc/cuda/*.cu")),
             extra_cflags=["-O3", "-std=c++17"], extra_cuda_cflags=["-O3", "-std=c++17", "--use_fast_math"],
             build_directory=cuda_dir, is_python_module=False)
        print(f"export LLMSYS_OPS_CUDA_LIBRARY={os.path.abspath(cuda_dir)}/llmsys_C_cuda_dev.so")
    return 0
