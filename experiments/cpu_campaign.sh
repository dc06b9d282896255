#!/usr/bin/env bash
# Report E's CPU campaign (docs/report_e.md, note 7): one seed of each AlexNet row, seeds
# 1-2 of the ladder's steps 2-4, one seed of each GoogLeNet row, then AlexNet's seeds 1-2,
# in this order, one run at a time. Each run is `digitjax.main` in the reproduce layout (runs/reproduce/<row>/seed<k>):
# a finished one (results.json, or its line in seeds.csv) is skipped, an interrupted one resumes from its
# checkpoint, and the tables and the seed ledger are rewritten after each. Start it in
# the background at a session's start and leave the machine light:
#   mkdir -p runs/reproduce && nohup bash experiments/cpu_campaign.sh \
#       > runs/reproduce/campaign.log 2>&1 &
# It holds runs/reproduce/.lock while it runs: a second campaign is refused.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs/reproduce
exec 9> runs/reproduce/.lock
flock -n 9 || { echo "error: a campaign already runs here (runs/reproduce/.lock)" >&2; exit 2; }
PY=${PY:-.venv/bin/python}
if [ -z "${TFDS_DATA_DIR:-}" ] && [ -d ../shared/tensorflow_datasets ]; then
  export TFDS_DATA_DIR=$(cd ../shared/tensorflow_datasets && pwd)
fi
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

RUNS=(  # row:variant:seed, the cheapest rows first (note 7's plan says why)
  E2-sgd:e2_alexnet_sgd:0 E2-adam:e2_alexnet_adam:0 E2-adagrad:e2_alexnet_adagrad:0
  E2-adadelta:e2_alexnet_adadelta:0
  E6.2:e6_v7_step2:1 E6.3:e6_v7_step3:1 E6.4:e6_v7_step4:1
  E6.2:e6_v7_step2:2 E6.3:e6_v7_step3:2 E6.4:e6_v7_step4:2
  E5-sgd:e5_googlenet_sgd:0 E5-adadelta:e5_googlenet_adadelta:0
  # beyond the issue's rows: AlexNet's seeds 1-2, for E2's verdicts
  E2-sgd:e2_alexnet_sgd:1 E2-adam:e2_alexnet_adam:1 E2-adagrad:e2_alexnet_adagrad:1
  E2-adadelta:e2_alexnet_adadelta:1
  E2-sgd:e2_alexnet_sgd:2 E2-adam:e2_alexnet_adam:2 E2-adagrad:e2_alexnet_adagrad:2
  E2-adadelta:e2_alexnet_adadelta:2
)
for run in "${RUNS[@]}"; do
  IFS=: read -r row variant seed <<< "$run"
  workdir=runs/reproduce/$row/seed$seed
  if [ -f "$workdir/results.json" ]; then echo "$row seed $seed: done"; continue; fi
  if grep -q "^$row,$seed," experiments/results/seeds.csv; then  # its workdir may be gone
    echo "$row seed $seed: done (recorded in experiments/results/seeds.csv)"; continue
  fi
  echo "== $row seed $seed ($(date -u +%FT%TZ))"
  mkdir -p "$workdir"
  "$PY" -m digitjax.main --config="configs/report_e.py:$variant" --workdir="$workdir" \
    --config.seed="$seed" >> "$workdir/train.log" 2>&1
  status=$?
  tail -n 3 "$workdir/train.log"
  if [ $status -ne 0 ] || [ ! -f "$workdir/results.json" ]; then
    echo "$row seed $seed stopped (exit $status); rerun this script to resume it"; exit $status
  fi
  "$PY" -m experiments.reproduce --report E --tabulate
done
echo "campaign done"
