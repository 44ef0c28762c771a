"""Build the op libraries for development with ninja (parallel), without touching the install.

    python -m runtime.ops.build_dev [--cuda] [--build-dir DIR]

Prints `export LLMSYS_OPS_LIBRARY=...` (and LLMSYS_OPS_CUDA_LIBRARY) lines for runtime/ops/library.py.
`make setup` (setup.py, runtime._C / runtime._C_cuda) remains the one build used by CI and users.
"""

from __future__ import annotations

import argparse
import glob
import os

from torch.utils.cpp_extension import load

CPU_FLAGS = ["-O3", "-fopenmp", "-mavx2", "-mfma", "-std=c++17"]  # the same flags as setup.py


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cuda", action="store_true", help="also build csrc/cuda (needs torch with CUDA + nvcc)")
    ap.add_argument("--build-dir", default="build/ops_dev")
    args = ap.parse_args()
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


if __name__ == "__main__":
    main()
