#!/usr/bin/env bash
# Every GPU check in one run, for a machine with a CUDA GPU (about 8 minutes on one GPU):
# the CUDA tests, the trainer's throughput with bf16 and channels_last on and off, and a search
# with --per-device 1, 2 and 4 (candidates per minute, GPU memory after 50 candidates). Prints
# every figure. Run it from the repository root, as it is: bash bench/gpu.sh
# It needs the project's Python packages (make test installs them; torch with CUDA included).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] && PYTHON=.venv/bin/python

echo "== the machine"
$PYTHON - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA GPU here: bench/gpu.sh is for a machine with one"
print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0), torch.cuda.device_count(), "GPUs")
PY

echo "== CUDA tests (those a CPU machine skips)"
timeout 240 $PYTHON -m pytest -q -p no:cacheprovider -n 0 -m "slow or not slow" -rA \
    tests/test_training.py tests/test_reliability.py tests/test_parallel.py -k "cuda or gpu" || true

echo "== trainer throughput (images/s; bf16 and channels_last on and off)"
timeout 150 $PYTHON bench/trainer_overhead.py --throughput --device cuda || true

echo "== search on every GPU with --per-device 1, 2, 4"
timeout 300 $PYTHON bench/parallel_search.py --device cuda --per-device 1,2,4 --candidates 50 || true
