#!/usr/bin/env bash
# Report E's CPU campaign (docs/report_e.md, note 7): one seed of each AlexNet row, seeds
# 1-2 of the ladder's step 2, one seed of each GoogLeNet row with seeds 0-2 of steps 3-4
# between them (their Adam epsilon, note 10), then AlexNet's seeds 1-2, in this order,
# one run at a time. Each run is `digitjax.main` in the reproduce layout
# (runs/reproduce/<row>/seed<k>): one finished under the row's config today (its
# results.json, or its line in seeds.csv: experiments.reproduce.done) is skipped, an
# interrupted one resumes from its checkpoint, and the tables and the seed ledger are
# rewritten after each. A workdir of a config changed since stops the campaign, saying
# so (move it aside to train the seed again). Start it in
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
  E6.2:e6_v7_step2:1 E6.2:e6_v7_step2:2
  E5-sgd:e5_googlenet_sgd:0
  # steps 3-4 again under their notebooks' Adam epsilon, 1e-8 (their seeds until
  # 2026-12-08 had Keras's default 1e-7; note 10), after the GoogLeNet run in progress
  E6.3:e6_v7_step3:0 E6.4:e6_v7_step4:0 E6.3:e6_v7_step3:1 E6.4:e6_v7_step4:1
  E6.3:e6_v7_step3:2 E6.4:e6_v7_step4:2
  E5-adadelta:e5_googlenet_adadelta:0
  # beyond the issue's rows: AlexNet's seeds 1-2, for E2's verdicts
  E2-sgd:e2_alexnet_sgd:1 E2-adam:e2_alexnet_adam:1 E2-adagrad:e2_alexnet_adagrad:1
  E2-adadelta:e2_alexnet_adadelta:1
  E2-sgd:e2_alexnet_sgd:2 E2-adam:e2_alexnet_adam:2 E2-adagrad:e2_alexnet_adagrad:2
  E2-adadelta:e2_alexnet_adadelta:2
)
for run in "${RUNS[@]}"; do
  IFS=: read -r row variant seed <<< "$run"
  workdir=runs/reproduce/$row/seed$seed
  "$PY" -m experiments.reproduce.done "$row" "$seed"  # its workdir, or seeds.csv
  case $? in
    0) echo "$row seed $seed: done"; continue ;;
    1) ;;
    *) echo "$row seed $seed: cannot tell whether it is done (above); campaign stopped"
       exit 2 ;;
  esac
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
