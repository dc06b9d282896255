"""Run a sweep: every point of a grid of config values, over seeds, then aggregate.

  ./launch.sh sweep experiments/sweep/specs/hidden_units.py [--root runs/sweeps] [--quick]

A sweep file (like a config, Python) defines `get_sweep()` returning a dict:
  name:      names the sweep's folder and tables
  base:      the base ml_collections config
  axes:      {"config.path": [values, ...], ...}: the grid is their product
  seeds:     how many seeds per point (seed 0..n-1)
  metric:    what the table and plot summarise (a results.json key), e.g. test_accuracy
  vmap_seeds: True trains a point's seeds side by side in one program; False runs them
             one after another. Default: True on an accelerator, False on a CPU, where
             vmapped layers become batched matmuls XLA:CPU runs slower than one seed at a
             time (keras_mlp 0.82x, the B4 CNN about 0.6x; only the perceptron gains,
             1.35x: experiments/BENCH.md, README). Models too big to replicate: False.

Every point runs in its own folder <root>/<name>/<point>, its seeds in seed<k>/ (or
seeds<a>-<b>/ when vmapped; experiments/reproduce/runner.py, shared with reproduce); a point that
finished under the same config is skipped, so an interrupted sweep continues where it
stopped (and an interrupted point resumes from its checkpoint). A point that ran under
another config (the sweep file changed) is refused rather than reused; one asked for
more epochs trains on. --quick runs one epoch of a few steps per point (runner.quick).
The aggregate goes to <root>/<name>/summary.{csv,md}
and <metric>.png: per point the mean ± std (ddof 1), the mean's 95% t-interval and n, of
the metric and of val and test accuracy; the best point is picked on val (the val
counterpart of the metric: val_loss for a loss, else val_accuracy), never on test, and
the plot rings it.
Compare two points' seeds with `python -m experiments.compare DIR_A DIR_B`.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
import os
import sys

from digitjax import validation
from digitjax import config_files
from digitjax import seed_stats
from digitjax.errors import UserError
from experiments import whole
from experiments.reproduce import runner
from experiments.sweep import names, summary


def load_sweep(path: str) -> dict:
  """The sweep a file defines, its defaults filled in. A file that does not import, has
  no get_sweep(), or describes no grid (no base config, no axes, an axis without values)
  is a UserError naming the file and the problem."""
  import ml_collections

  if not os.path.isfile(path):
    raise UserError(f"sweep file {path!r} does not exist; see experiments/sweep/specs/.")
  usage = ("a sweep file defines get_sweep() returning dict(name=..., base=<a config>, "
           "axes={'config.path': [values, ...]}), as experiments/sweep/specs/*.py do.")
  module = config_files.load_module(path, "sweep_file")
  sweep = dict(vmap_seeds=None, metric="test_accuracy", seeds=3)
  sweep.update(config_files.call_file(path, module, "get_sweep", (), dict, usage))
  _check_keys(path, sweep, usage)
  missing = [k for k in ("name", "base", "axes") if k not in sweep]
  if missing:
    raise UserError(f"{path}: get_sweep() returned no {', '.join(missing)}; {usage}")
  if not isinstance(sweep["base"], ml_collections.ConfigDict):
    raise UserError(f"{path}: get_sweep()'s base is a {type(sweep['base']).__name__}, not "
                    f"a ConfigDict; {usage}")
  axes = sweep["axes"]
  if not isinstance(axes, dict) or not axes:
    raise UserError(f"{path}: get_sweep()'s axes are {axes!r}: no grid to run; {usage}")
  for axis, values in axes.items():
    if axis.removeprefix("config.") in SET_BY_THE_SWEEP:
      raise UserError(f"{path}: axis {axis!r} is set by the sweep itself (each point trains "
                      "seeds 0..n-1); give seeds=N in get_sweep() instead of an axis.")
    if not isinstance(values, (list, tuple)) or not values:
      raise UserError(f"{path}: axis {axis!r} has no values ({values!r}); give it a list, "
                      "e.g. {'model.dropout': [0.0, 0.5]}.")
  if sweep["metric"] not in seed_stats.SEED_STATS:
    raise UserError(f"{path}: metric={sweep['metric']!r} is not a figure a run reports; "
                    f"known: {', '.join(seed_stats.SEED_STATS)}.")
  if isinstance(sweep["seeds"], bool) or not isinstance(sweep["seeds"], int) or (
      sweep["seeds"] < 1):
    raise UserError(f"{path}: seeds={sweep['seeds']!r} must be a whole number of at least 1.")
  if sweep["vmap_seeds"] is None:
    import jax
    sweep["vmap_seeds"] = jax.default_backend() != "cpu"
  return sweep


KEYS = ("name", "base", "axes", "seeds", "metric", "vmap_seeds")
SET_BY_THE_SWEEP = ("seed", "num_seeds")  # runner.run_seeds sets them per seed


def _check_keys(path: str, sweep: dict, usage: str) -> None:
  """A misspelt key (`metirc=`) or one the sweep does not read (`seed=`) would otherwise
  be ignored, and the sweep run on its defaults."""
  import difflib

  for key in sweep:
    if key not in KEYS:
      near = difflib.get_close_matches(str(key), KEYS, n=1, cutoff=0.5)
      hint = f" (did you mean {near[0]!r}?)" if near else ""
      raise UserError(f"{path}: get_sweep() returned the unknown key {key!r}{hint}; its "
                      f"keys are {', '.join(KEYS)}. {usage}")


def point_configs(sweep: dict, quick: bool = False) -> list[tuple[str, dict, object]]:
  """(name, setting, config) of every grid point, each checked before any trains: a bad
  value in the last point must not surface after the first has trained for an hour."""
  checked = []
  for name, setting in points(sweep):
    config = point_config(sweep, setting)
    errors = validation.validate(config)
    if not validation.has_validation(config):
      errors.append("dataset.validation_fraction=0 holds no validation set, and a sweep "
                    f"picks its best point on {summary.selection_metric(sweep['metric'])}; set a "
                    "validation_fraction (e.g. 0.1) or a validation_split.")
    if errors:
      raise UserError(f"sweep point {name}: {errors[0]} Nothing has trained; fix the "
                      "sweep file's axes or base.")
    checked.append((name, setting, runner.quick(config) if quick else config))
  return checked


def _set(config, path: str, value):
  node = config
  *parents, leaf = path.split(".")
  try:
    for p in parents:
      node = node[p]
    node[leaf] = value
  except (KeyError, AttributeError, TypeError) as e:
    raise UserError(f"sweep axis {path}={value!r} does not fit the config: {e}") from e


def points(sweep: dict):
  """(point name, {axis: value}) for every grid point, in a stable order."""
  axes = sweep["axes"]
  for values in itertools.product(*axes.values()):
    setting = dict(zip(axes, values))
    yield names.point_name(setting), setting


def point_config(sweep: dict, setting: dict):
  """The base config with one grid point's values set (its seeds come from run_point)."""
  config = copy.deepcopy(sweep["base"])
  config.lock()  # a misspelt axis must fail, not add a new field
  for path, value in setting.items():
    _set(config, path, value)
  return config


ADVICE = ("The sweep file changed since this point ran: rename the sweep (its name) or pass "
          "another --root to keep both, or move the old folder aside to run it again.")


def run_point(sweep: dict, config, workdir: str) -> list[dict]:
  """Per-seed results of one point (seeds 0..n-1 under workdir, experiments/reproduce/runner.py's
  layout), training whatever has not finished yet; a point that ran under another
  config (the sweep file changed) is refused rather than reused."""
  seeds = list(range(sweep["seeds"]))
  done = runner.finished_seeds(config, workdir, ADVICE)
  if all(s in done for s in seeds):
    print(f"  {workdir}: done, skipped")
  runs = runner.run_seeds(config, workdir, seeds, together=sweep["vmap_seeds"],
                          advice=ADVICE, done=done)
  return [run.result for run in runs]


def run_sweep(path: str, root: str = "runs/sweeps", quick: bool = False,
              seeds: int | None = None) -> str:
  sweep = load_sweep(path)
  if seeds:
    sweep["seeds"] = seeds
  folder = os.path.join(root, sweep["name"] + ("-quick" if quick else ""))
  grid = point_configs(sweep, quick)
  os.makedirs(folder, exist_ok=True)
  rows = []
  for i, (name, setting, config) in enumerate(grid, 1):
    print(f"[{i}/{len(grid)}] {sweep['name']}: {name}", flush=True)
    with runner.quick_data(config) if quick else contextlib.nullcontext():
      per_seed = run_point(sweep, config, os.path.join(folder, name))
    rows.append(dict(name=name, setting=setting, per_seed=per_seed))
  table = summary.aggregate(sweep, rows, folder)
  print(table)
  print(f"Wrote {folder}/summary.md, summary.csv and {sweep['metric']}.png")
  return folder


def moved_spec(path: str) -> str:
  """A sweep file named by its path in the old experiments/sweeps/ folder: the same file
  under experiments/sweep/specs/, with a note on stderr. Goes in the next release, with
  experiments/_moved.py."""
  old, new = "experiments/sweeps/", "experiments/sweep/specs/"
  moved = path.replace(os.sep, "/").replace(old, new)
  if os.path.isfile(path) or moved == path or not os.path.isfile(moved):
    return path
  print(f"{old} moved to {new}; running {moved} (the old path goes in the next release)",
        file=sys.stderr)
  return moved


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m experiments.sweep",
                                   description=__doc__.split("\n")[0])
  parser.add_argument("sweep", help="a sweep file, e.g. experiments/sweep/specs/hidden_units.py")
  parser.add_argument("--root", default="runs/sweeps", help="where sweep folders go")
  parser.add_argument("--quick", action="store_true",
                      help="tiny data and one epoch per point: checks a sweep end to end")
  parser.add_argument("--seeds", type=whole(1), help="override the sweep's number of seeds")
  args = parser.parse_args(argv)
  try:
    run_sweep(moved_spec(args.sweep), args.root, args.quick, args.seeds)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  except KeyboardInterrupt:
    print("Interrupted: rerun the same command to continue the sweep.", file=sys.stderr)
    sys.exit(130)


if __name__ == "__main__":
  main()
