#!/usr/bin/env bash
# The thin shell front of digitjax. Creates .venv on first use from requirements.lock (and
# again whenever pyproject.toml or a lock it installed changes), points TFDS at
# ../shared/tensorflow_datasets when that folder exists and TFDS_DATA_DIR is unset, then:
#   ./launch.sh CONFIG [--workdir=DIR] [--mode=eval] [--config.FIELD=VALUE ...]   one run
#   ./launch.sh --mode=eval|predict|export|summary --workdir=DIR [...]   a trained run
#   ./launch.sh test [PYTEST ARGS]                    the test suite (what CI runs)
#   ./launch.sh extras EXTRA [EXTRA ...]              install extras (tensorboard, bench) from
#                                                     their locks, requirements-EXTRA.lock
#   ./launch.sh sweep SWEEP_FILE [OPTIONS]            a sweep (experiments/sweep/run.py --help)
#   ./launch.sh reproduce [OPTIONS]                   re-run report rows (experiments/reproduce/run.py --help)
#   ./launch.sh runs [DIR] [--all] [--json]           list the runs under DIR (default runs/)
#   ./launch.sh --processes N CONFIG [...]            N processes on this machine (jax.distributed)
#   ./launch.sh --slurm [--nodes N] [--gpus-per-node G] [--time HH:MM:SS] [--out FILE]
#                   [--submit] CONFIG [...]           write (and submit) an sbatch script
set -euo pipefail
cd "$(dirname "$0")"

usage() {  # the comment block at the top of this file, without its leading '# '
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
}
case "${1:-}" in ""|-h|--help) usage; exit 0 ;; esac  # before any set-up

known_extras() { ls requirements-*.lock | sed 's/requirements-\(.*\)\.lock/\1/' | paste -sd, - | sed 's/,/, /g'; }

check_extras() {  # NAME...: each has its lock, requirements-NAME.lock (before any set-up)
  [ $# -ge 1 ] || { echo "error: extras needs a name: $(known_extras)" >&2; exit 2; }
  for extra in "$@"; do
    if [[ ! "$extra" =~ ^[A-Za-z0-9_-]+$ ]] || [ ! -f "requirements-$extra.lock" ]; then
      echo "error: no extra '$extra' (no requirements-$extra.lock); the extras are: $(known_extras)" >&2
      exit 2
    fi
  done
}
if [ "${1:-}" = extras ]; then check_extras "${@:2}"; fi

VENV=${DIGITJAX_VENV:-.venv}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
stamp="$VENV/.installed"
extras_file="$VENV/.extras"  # the extras `./launch.sh extras` installed, one a line
installed_extras() { [ -f "$extras_file" ] && cat "$extras_file" || true; }

install_extra() {  # NAME: requirements-NAME.lock, the whole install (base, test) plus NAME
  "$VENV/bin/python" -m pip install -q --require-hashes -r "requirements-$1.lock" >&2
}

stale=0
for lock in requirements.lock $(installed_extras | sed 's/.*/requirements-&.lock/'); do
  if [ "$lock" -nt "$stamp" ]; then stale=1; fi
done
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] \
   || [ "$stale" = 1 ]; then
  echo "Setting up $VENV (first run: a few minutes)..." >&2
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  # the exact versions and hashes of requirements.lock, then this project alone
  "$VENV/bin/python" -m pip install -q --require-hashes -r requirements.lock >&2
  for extra in $(installed_extras); do install_extra "$extra"; done  # kept on a rebuild
  "$VENV/bin/python" -m pip install -q --no-deps -e . >&2
  touch "$stamp"
fi
PY="$(cd "$VENV" && pwd)/bin/python"

if [ -z "${TFDS_DATA_DIR:-}" ] && [ -d ../shared/tensorflow_datasets ]; then
  TFDS_DATA_DIR=$(cd ../shared/tensorflow_datasets && pwd)
  export TFDS_DATA_DIR
fi
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

count() {  # NAME VALUE: VALUE must be a positive whole number
  [[ "$2" =~ ^[1-9][0-9]*$ ]] || { echo "error: $1 needs a positive whole number, not '$2'" >&2; exit 2; }
}

check() {  # CONFIG [ARGS]: the command line digitjax.main would get, parsed and validated
  "$PY" -c 'import sys; from digitjax import main; main.check_args(["digitjax.main", *sys.argv[1:]])' \
    --config="$@" || exit 2
}

processes() {  # N CONFIG [ARGS]: one coordinator on localhost, N processes, signals forwarded
  count --processes "${1:-}"; [ $# -ge 2 ] || { echo "error: --processes N needs a config file" >&2; exit 2; }
  local n=$1 config=$2; shift 2
  check "$config" "$@"
  local port=$((20000 + RANDOM % 20000)) pids=() status=0
  trap 'kill -TERM "${pids[@]}" 2>/dev/null' TERM INT
  for ((i = 0; i < n; i++)); do
    DIGITJAX_NUM_PROCESSES=$n DIGITJAX_PROCESS_ID=$i DIGITJAX_COORDINATOR=localhost:$port \
      "$PY" -m digitjax.main --config="$config" "$@" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
  return $status
}

slurm() {  # write runs/slurm/<config>.sbatch (or --out FILE): one process per GPU
  local nodes=1 gpus=1 time=04:00:00 submit=0 script=""
  while [[ "${1:-}" == --* ]]; do
    case "$1" in
      --nodes) count --nodes "${2:-}"; nodes=$2; shift 2 ;;
      --gpus-per-node) count --gpus-per-node "${2:-}"; gpus=$2; shift 2 ;;
      --time) [[ "${2:-}" =~ ^[0-9][0-9:-]*$ ]] || { echo "error: --time needs [D-]HH:MM:SS, not '${2:-}'" >&2; exit 2; }
              time=$2; shift 2 ;;
      --submit) submit=1; shift ;;
      --out) [ -n "${2:-}" ] || { echo "error: --out needs a file name" >&2; exit 2; }
             script=$2; shift 2 ;;
      *) echo "error: unknown --slurm option $1" >&2; exit 2 ;;
    esac
  done
  [ $# -ge 1 ] || { echo "error: --slurm needs a config file" >&2; exit 2; }
  local config=$1; shift
  for arg in "$@"; do
    case "$arg" in --nodes*|--gpus-per-node*|--time*|--submit|--out)
      echo "error: $arg is a --slurm option: put it before the config file ($config)" >&2; exit 2 ;;
    esac
  done
  check "$config" "$@"  # after CONFIG come digitjax.main's flags: checked before queueing
  local name tfds=""
  name=$(basename "$config" .py)
  script=${script:-runs/slurm/$name.sbatch}
  mkdir -p "$(dirname "$script")"
  # every path and argument shell-quoted (printf %q): a checkout, venv, data folder or
  # config whose path holds a space or a quote must not split the job's cd or srun line
  if [ -n "${TFDS_DATA_DIR:-}" ]; then tfds="TFDS_DATA_DIR=$(printf '%q' "$TFDS_DATA_DIR")"; fi
  cat > "$script" <<SBATCH
#!/usr/bin/env bash
#SBATCH --job-name=digitjax-${name//[^A-Za-z0-9._-]/_}
#SBATCH --nodes=$nodes
#SBATCH --ntasks-per-node=$gpus
#SBATCH --gpus-per-task=1
#SBATCH --time=$time
#SBATCH --output=runs/slurm/%x-%j.out
cd $(printf '%q' "$(pwd)") || exit 1
export TF_CPP_MIN_LOG_LEVEL=2 DIGITJAX_DISTRIBUTED=auto $tfds
srun $(printf '%q' "$PY") -m digitjax.main $(printf '%q ' "--config=$config" "$@")
SBATCH
  echo "Wrote $script"
  if [ "$submit" = 1 ]; then sbatch "$script"; fi
}

extras() {  # EXTRA...: each from its lock (requirements.lock's pins, plus its own),
  # remembered in $extras_file so that a rebuild of the venv installs it again
  for extra in "$@"; do
    echo "Installing $extra from requirements-$extra.lock..." >&2
    install_extra "$extra"
    installed_extras | grep -qx "$extra" || echo "$extra" >> "$extras_file"
  done
  touch "$stamp"
}

case "${1:-}" in
  test) shift; exec "$PY" -m pytest "$@" ;;
  extras) shift; extras "$@" ;;
  sweep) shift; exec "$PY" -m experiments.sweep "$@" ;;
  reproduce) shift; exec "$PY" -m experiments.reproduce "$@" ;;
  runs) shift; exec "$PY" -m experiments.list_runs "$@" ;;
  --processes) shift; processes "$@" ;;
  --slurm) shift; slurm "$@" ;;
  --*) exec "$PY" -m digitjax.main "$@" ;;  # flags alone: --mode=eval --workdir=DIR
  *) config=$1; shift; exec "$PY" -m digitjax.main --config="$config" "$@" ;;
esac
