"""The shared layer: offline assets, the runtime demo and the csrc/ op library's tools."""

from __future__ import annotations

from runtime.cli import Verb, run_verbs

VERBS = (
    Verb("assets", "runtime.assets.cli:list_main", "every offline asset and whether its package is installed"),
    Verb("prepare", "runtime.assets.cli:prepare_main", "convert model GGUFs into the HF cache (names=[...])"),
    Verb("demo", "runtime.demo:main", "asset check + one real SmolLM2 chat turn (backend=hf|vllm)"),
    Verb("ops-demo", "runtime.ops.demo:main", "the fused ops next to the eager reference on a small batch"),
    Verb("bench-kernels", "runtime.ops.bench:main", "fused ops vs eager torch on CPU: time + peak memory"),
    Verb("bench-kernels-gpu", "runtime.ops.bench_gpu:main", "soft_cross_entropy on CUDA: cuda / triton / eager"),
    Verb("build-ops-dev", "runtime.ops.build_dev:main", "build the op libraries with ninja for development"),
)


def main(argv: list[str] | None = None) -> int:
    return run_verbs("python -m runtime", __doc__, VERBS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
