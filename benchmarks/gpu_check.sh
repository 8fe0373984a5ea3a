#!/usr/bin/env bash
# Every GPU check in one go, for a machine with an NVIDIA GPU and onnxruntime-gpu (its CUDA build):
#   1. gpu_info.json       which providers onnxruntime offers and really gives (stylecam info --json)
#   2. gpu_tests.txt       the GPU tests (pytest -m gpu): IO-bound chain, --fp16 and batched frames
#                          against the CPU, threads sharing one Stylizer, shipped styles on CUDA,
#                          one training step on CUDA
#   3. runtime_fps_gpu.json/.md
#                          the runtime benchmark on CUDA: shipped lite models, float32 and float16,
#                          one worker and --workers auto (4 frames at once), one style and
#                          --chain wave,muse --repeat 3, 640x480 and 1280x720
#   4. runtime_fps_gpu_proxy.json/.md
#                          the same for an untrained full network (same graph as a trained one, so the
#                          same speed; needs PyTorch), which gives the full variant's figures
#
# Usage: benchmarks/gpu_check.sh [RESULTS_DIR [BENCHMARK_ARGS...]]   (default: benchmarks/results)
#   BENCHMARK_ARGS go last to both benchmark runs, e.g. --sizes 640x480 --frames 10 for a quick look.
# Each step runs even when an earlier one fails; the exit status is that of the first failure.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/results}
shift $(( $# > 0 ? 1 : 0 ))
mkdir -p "$out"
python=${PYTHON:-python3}
status=0
step() {  # step NAME COMMAND...: run, keep the first failure's status
    echo "== $1" >&2
    shift
    "$@" || { rc=$?; echo "== failed with status $rc" >&2; [ "$status" -ne 0 ] || status=$rc; }
}

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >&2
step info sh -c "$python -m stylecam.cli info --device cuda --json > '$out/gpu_info.json'"
step tests bash -o pipefail -c "$python -m pytest -q -m gpu -rs tests 2>&1 | tee '$out/gpu_tests.txt'"
bench=(--device cuda --sizes 640x480,1280x720 --precisions fp32,fp16 --batch 1 --workers 1,auto
       --frames 60 --warmup 10 --e2e-frames 150 --no-peer)
step bench-shipped "$python" -m benchmarks.runtime_fps "${bench[@]}" --models shipped --variants lite "$@" \
    -o "$out/runtime_fps_gpu.json"
step bench-proxy "$python" -m benchmarks.runtime_fps "${bench[@]}" --models proxy --variants full "$@" \
    -o "$out/runtime_fps_gpu_proxy.json"
exit "$status"
