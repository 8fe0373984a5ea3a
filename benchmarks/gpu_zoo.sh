#!/usr/bin/env bash
# The full-model zoo in one command on a borrowed GPU machine (one command: at most 10 minutes).
#
# Trains the full network of every painting in the carried folder together (`stylecam-train zoo`:
# one data pipeline, photos on the GPU, one VGG-16 pass for all styles, bf16 + channels-last),
# then optimises the Gatys references of every style for the report's 10 photos (512 px, 300
# L-BFGS steps, one batch of all styles per photo). Everything it writes goes to OUT, at most 8
# files (the transfer limit), refreshed every minute so that a run cut off still returns its work:
#   zoo.pt.part00..02   the bundle (fp16 weights, settings, loss logs, crops seen), in 15 MiB parts
#   losses.zip          one CSV loss log per style
#   sheet.jpg           held-out photos x styles
#   summary.json        throughput over the first 20 s, crops seen per style, versions
#   gatys.tar           NAME/NN.jpg for every style and photo, gatys.json with their losses
#   run.log             everything printed
#
# Before (on the CPU machine, once): python -m benchmarks.gpu_zoo_carry   -> .gpu_zoo/ (carried, ~34 MiB)
# Usage: benchmarks/gpu_zoo.sh OUT            the GPU run (needs CUDA; fails in seconds otherwise)
#        benchmarks/gpu_zoo.sh OUT --cpu-check the same script end to end on a CPU, tiny sizes, ~2 minutes
# Settings can be changed through the environment: ZOO_MINUTES, GATYS_MINUTES, ZOO_SIZE, ZOO_BATCH,
# ZOO_CONFIG, GATYS_STEPS, GATYS_SIZE, ZOO_CARRY, ZOO_ARGS (extra `stylecam-train zoo` options,
# e.g. "--set wave.style_weight=2e5").
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: benchmarks/gpu_zoo.sh OUT [--cpu-check]}
mode=${2:-gpu}
carry=${ZOO_CARRY:-.gpu_zoo}
python=${PYTHON:-python3}
mkdir -p "$out"
exec > >(tee -a "$out/run.log") 2>&1
export TQDM_MININTERVAL=5 PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [ "$mode" = "--cpu-check" ]; then
    device=cpu; minutes=${ZOO_MINUTES:-1.0}; gatys_minutes=${GATYS_MINUTES:-0.2}; size=${ZOO_SIZE:-64}
    batch=${ZOO_BATCH:-2}; config=${ZOO_CONFIG:-lite}; gatys_steps=${GATYS_STEPS:-5}; gatys_size=${GATYS_SIZE:-96}
    save_every=20
else
    device=cuda; minutes=${ZOO_MINUTES:-6.5}; gatys_minutes=${GATYS_MINUTES:-1.4}; size=${ZOO_SIZE:-256}
    batch=${ZOO_BATCH:-8}; config=${ZOO_CONFIG:-full}; gatys_steps=${GATYS_STEPS:-300}; gatys_size=${GATYS_SIZE:-512}
    save_every=60
fi
echo "== gpu_zoo: $(date -u +%FT%TZ) mode=$mode minutes=$minutes gatys_minutes=$gatys_minutes size=$size batch=$batch config=$config"

# 1. the environment, in seconds: versions, the GPU, the carried data, one bf16 step of a conv
"$python" - "$device" "$carry" <<'EOF' || { echo "== gpu_zoo: environment check failed" >&2; exit 3; }
import json, sys, time
from pathlib import Path
device, carry = sys.argv[1], Path(sys.argv[2])
import torch, torchvision
print(f"python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
      f"torchvision {torchvision.__version__}")
if device == "cuda":
    if not torch.cuda.is_available():
        sys.exit("no CUDA GPU visible to PyTorch")
    print("gpu:", torch.cuda.get_device_name(0), f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
for need in ("vgg16_relu4_3_fp16.pth", "train", "styles", "content", "MANIFEST.json"):
    if not (carry / need).exists():
        sys.exit(f"{carry / need} is missing: build it with python -m benchmarks.gpu_zoo_carry and carry {carry}")
print("carried:", json.loads((carry / "MANIFEST.json").read_text())["carried_mib"], "MiB")
t = time.perf_counter()
conv = torch.nn.Conv2d(3, 8, 3).to(device)
with torch.autocast(device, dtype=torch.bfloat16):
    y = conv(torch.rand(2, 3, 32, 32, device=device))
y.float().sum().backward()
print(f"bf16 conv step ok in {time.perf_counter() - t:.2f} s")
import trainer.zoo, trainer.gatys_batch  # noqa: F401,E401  the code imports with this torch
EOF

# 2. train the zoo, then the Gatys references (the first step and the throughput are printed early)
"$python" -m trainer.cli zoo --styles-dir "$carry/styles" --data "$carry/train" \
    --vgg-weights "$carry/vgg16_relu4_3_fp16.pth" --config "$config" --device "$device" \
    --minutes "$minutes" --size "$size" --batch-size "$batch" --out "$out" --split-mib 15 \
    --save-every "$save_every" --throughput-seconds 20 \
    --gatys-photos "$carry/content" --gatys-steps "$gatys_steps" --gatys-size "$gatys_size" \
    --gatys-minutes "$gatys_minutes" ${ZOO_ARGS:-}
status=$?
echo "== gpu_zoo: $(date -u +%FT%TZ) done with status $status; files in $out:"
ls -la "$out"
exit $status
