#!/bin/bash
# Run several digitjax jobs side by side on a lent GPU machine that has JAX but neither
# TensorFlow nor this project's other pure-Python dependencies (how B6a, seeds 1-2 of B2a,
# B6b, B6c, C3, D1-30, cnn_bn_plus (Keras 2.2's RMSprop) and the B6 readings sweep were
# measured, 2026-11-23).
#
# Prepare here, in the repository root (writes .gpu/, ignored through .git/info/exclude:
# Python 3.12 wheels of the pure-Python dependencies, MNIST as .npz, tf_flowers as its
# JPEG bytes; 50 MB in all, under a device call's 64 MiB):
#   TFDS_DATA_DIR=<prepared TFDS datasets, e.g. ../shared/tensorflow_datasets> \
#     bash experiments/gpu_jobs.sh prepare
# There, carrying .gpu, with a prepared job list (one command per line, '#' lines are
# comments; a line "first: CMD" runs alone before the others start side by side):
#   bash experiments/gpu_jobs.sh 505 experiments/gpu_jobs/call1.txt 2>&1 | tee $OUT/gpu_log.txt
# experiments/gpu_jobs/call1.txt ... call6.txt hold the report rows this CPU cannot afford,
# one device call each, the call that finishes the most rows first (sized in docs/gpu.md,
# "The calls still to make"): the VGG16 and GoogLeNet rows (E3-E5), D1/D2 at 700 epochs
# (3 seeds together), the speedrun, and E2's seeds 1-2. Run the lowest-numbered call not
# yet done.
# Back here: tar xzf results.tgz, copy the workdirs into runs/, then
#   python -m experiments.reproduce --report all --tabulate
#
# Jobs still running at DEADLINE_S get SIGTERM (they checkpoint and stop); runs/ without
# checkpoints/ and the logs are packed into $OUT/results.tgz.
set -u
if [ "${1:-}" = prepare ]; then
  set -e
  mkdir -p .git/info; grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >> .git/info/exclude
  PY=${PY:-.venv/bin/python}
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux2014_x86_64 -d .gpu/whl ml_collections==1.1.0 \
    tensorboardX==2.6.5 flax==0.12.8 optax==0.2.8 orbax-checkpoint==0.12.8
  for d in mnist tf_flowers; do "$PY" -m experiments.without_tfds export $d .gpu/data; done
  du -sh .gpu; exit 0
fi
T0=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
# Full float32 convolutions and matmuls (JAX's default allows TF32 on this GPU), and
# deterministic reductions: the same seed gives the same numbers there too.
export JAX_DEFAULT_MATMUL_PRECISION=${PREC:-highest} XLA_FLAGS=--xla_gpu_deterministic_ops=true
export TF_CPP_MIN_LOG_LEVEL=2
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
python3 -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())" || exit 1
mkdir -p runs /tmp/logs
[ -d .gpu/runs ] && cp -r .gpu/runs/* runs/
i=0; pids=()
# Lines starting "first: " run alone, one after another, before the others start side by
# side (a timing that other jobs must not disturb, e.g. the speedrun).
while IFS= read -r line; do
  [[ "$line" == "first: "* ]] || continue; i=$((i+1))
  echo "job$i (alone): ${line#first: }"
  bash -c "${line#first: }" > /tmp/logs/job$i.log 2>&1; tail -25 /tmp/logs/job$i.log
done < "$2"
while IFS= read -r line; do
  [ -z "$line" ] || [[ "$line" == "first: "* || "$line" == "#"* ]] && continue; i=$((i+1))
  bash -c "$line" > /tmp/logs/job$i.log 2>&1 &
  pids+=($!); echo "job$i (pid $!): $line"
done < "$2"
end=$((T0 + $1))
while :; do
  alive=0; for p in "${pids[@]}"; do kill -0 $p 2>/dev/null && alive=$((alive+1)); done
  [ $alive -eq 0 ] && break
  now=$(date +%s)
  if [ $now -ge $end ]; then
    echo "deadline: SIGTERM to $alive jobs"; pkill -TERM -f "python3 -m"; sleep 25; break
  fi
  sleep 10; [ $(( (now - T0) % 60 )) -lt 10 ] || continue
  echo "--- t=$((now - T0))s alive=$alive $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader)"
  for f in /tmp/logs/*.log; do
    echo "$(basename $f): $(grep -a 'Epoch\|Test\|==\|rror' $f | tail -1 | cut -c1-150)"
  done
done
echo "=== finished at t=$(( $(date +%s) - T0 ))s"
for f in /tmp/logs/*.log; do
  echo "##### $f"; grep -a "Test\|==\|rror\|Report\|Traceback\|Early\|Epoch" $f | tail -6
done
tar czf "$OUT/results.tgz" --exclude=checkpoints runs /tmp/logs 2>/dev/null
ls -la "$OUT"
