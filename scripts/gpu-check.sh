#!/usr/bin/env bash
# The GPU checks in one run (a lent GPU machine's time is short): the CUDA tests, the throughput report on
# CUDA, torch.compile for one model, and the per-cell times of the capacity probe.  Each step has its own
# time limit and log, so one failing step does not cost the others.  Writes into $OUT (default
# /tmp/ecgbench-gpu).
#   bash scripts/gpu-check.sh                      # every step
#   bash scripts/gpu-check.sh test-gpu perf-cuda   # some steps
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" ECGBENCH_CACHE="${ECGBENCH_CACHE:-/tmp/ecgbench-cache}"
OUT="${OUT:-/tmp/ecgbench-gpu}"
mkdir -p "$OUT"
python="${ECGBENCH_PYTHON:-python3}"
steps="${*:-test-gpu perf-cuda probe compile}"
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  "$python" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"; } > "$OUT/gpu.txt" 2>&1
step() {  # step NAME SECONDS COMMAND...: run it if NAME was asked for
  local name=$1 limit=$2; shift 2
  [[ " $steps " == *" $name "* ]] || return 0
  local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  echo "$name: exit $? in $((SECONDS - t0)) s" | tee -a "$OUT/steps.txt"
}
step test-gpu 150 "$python" -m pytest tests/test_gpu.py -q -p no:cacheprovider
step perf-cuda 200 "$python" -m ecgbench perf --measure --max-wait 0 --json "$OUT/throughput-cuda.json" \
  --out "$OUT/performance-cuda.md" -- -k cuda -q
step probe 300 "$python" -m pytest benchmarks/test_grid.py --ecg-profiles benchmarks/capacity-probe.toml \
  --ecg-profile probe --ecg-results "$OUT/probe/results" -q -p no:cacheprovider
if [ -d "$OUT/probe" ]; then
  tar czf "$OUT/probe-results.tgz" --exclude=checkpoints -C "$OUT/probe" . && rm -rf "$OUT/probe"
fi
step compile 240 env ECGBENCH_COMPILE=1 "$python" -m ecgbench perf --measure --max-wait 0 \
  --json "$OUT/throughput-cuda-compiled.json" --out "$OUT/performance-cuda-compiled.md" \
  -- -k "cuda and resnet1d18 and (train_step or inference or n500)" -q
tail -n 3 "$OUT"/*.log
