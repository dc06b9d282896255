#!/usr/bin/env bash
# The thin shell front of digitjax. Creates .venv on first use (and again whenever
# pyproject.toml changes), points TFDS at ../shared/tensorflow_datasets when that folder
# exists and TFDS_DATA_DIR is unset, then:
#   ./launch.sh configs/cnn_bn.py [--workdir=DIR] [--mode=eval] [--config.FIELD=VALUE ...]
#   ./launch.sh test [PYTEST ARGS]        the test suite (what CI runs)
set -euo pipefail
cd "$(dirname "$0")"

usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; }

VENV=${DIGITJAX_VENV:-.venv}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
stamp="$VENV/.installed"
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "Setting up $VENV (first run: a few minutes)..." >&2
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q -e ".[test]" >&2
  touch "$stamp"
fi

if [ -z "${TFDS_DATA_DIR:-}" ] && [ -d ../shared/tensorflow_datasets ]; then
  TFDS_DATA_DIR=$(cd ../shared/tensorflow_datasets && pwd)
  export TFDS_DATA_DIR
fi
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

case "${1:-}" in
  test) shift; exec "$VENV/bin/python" -m pytest "$@" ;;
  ""|-h|--help) usage ;;
  *) config=$1; shift; exec "$VENV/bin/python" -m digitjax.main --config="$config" "$@" ;;
esac
