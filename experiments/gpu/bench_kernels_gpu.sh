#!/usr/bin/env bash
# Issue 6 GPU check, prepared for the device machine (H200; its image has python3 + torch + triton + nvcc).
# Run from the repo root, e.g. through the device tool:  bash experiments/gpu/bench_kernels_gpu.sh
# Budget: ~2 min build (ninja, 16 cores) + ~1 min tests + ~1 min bench. Everything lands in $OUT.
# 1. builds csrc/cpu + csrc/cuda (sm_90) with the machine's torch, 2. runs tests/runtime/ops (cuda and triton
# against the float64 reference), 3. benchmarks reference / cuda / triton soft_cross_entropy at
# N=4096, H=576, V=32000 (bf16 and fp32): time, peak memory, achieved GB/s vs measured copy bandwidth.
set -uo pipefail
OUT=${OUT:-/tmp/bench_kernels_gpu}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONPATH=$PWD LLMSYS_NO_PROGRESS=1 MAX_JOBS=16 TORCH_CUDA_ARCH_LIST=9.0
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > "$OUT/gpu.txt" 2>&1
$PY -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" >> "$OUT/gpu.txt" 2>&1

timeout 300 $PY -m runtime build-ops-dev cuda=true build_dir=/tmp/ops_build > "$OUT/build.log" 2>&1
echo "build rc=$?" >> "$OUT/build.log"
eval "$(grep '^export LLMSYS_OPS' "$OUT/build.log")"

timeout 240 $PY -m pytest -q -rs tests/runtime/ops > "$OUT/tests.log" 2>&1
echo "tests rc=$?" >> "$OUT/tests.log"

timeout 240 $PY -m runtime bench-kernels-gpu out="$OUT/bench_kernels_gpu.json" > "$OUT/bench.log" 2>&1
echo "bench rc=$?" >> "$OUT/bench.log"

tail -n 5 "$OUT/gpu.txt" "$OUT/build.log"; tail -n 15 "$OUT/tests.log"; cat "$OUT/bench.log"
