"""List every run under a folder: what it is, when it started, how far it got, what it scored.

  python -m experiments.list_runs [DIR] [--all] [--json]     # DIR: default runs/
  ./launch.sh runs [DIR] [--all] [--json]

A run is a workdir: a folder holding config.json (sweep points' and reproduce rows' seed<k>
sub-runs included). One line each, sorted by path:

  name       the config's name; a sweep point's seeds show their axis values instead
             (`hidden_units=32 hidden_activation=sigmoid`: what tells the points apart)
  status     finished (results.json), running (its lock names a live process on this
             machine), stopped (epochs but no results: rerun the same command to resume),
             failed: ... (a damaged config.json or results.json), empty (no epoch yet)
  epochs     epochs done / the config's num_epochs (fewer when early stopping ended it)
  val @best  val accuracy at the best epoch by config.monitor, the checkpoint digitjax
             keeps and tests, `@` that epoch (several seeds: the mean, the epochs' range).
             Finished: results.json's own val figure and best_epoch; unfinished: read from
             metrics.jsonl by the rule digitjax.callbacks.track_best applies. Not the
             highest val accuracy of any epoch, which is not the model that was tested.
  test       results.json's test accuracy (mean over seeds)
  started    when the run first started, UTC: its oldest TensorBoard event file, else
             config.json's provenance date (which a resume rewrites)
  overrides  the config fields whose value differs from the schema's defaults
             (digitjax.config.get_config()), as `field=value`, the last part of a field's
             name where no other field ends so. config.json records the resolved config, not
             the command line or the config file it came from, so this is what the run
             changed from the schema, a config file's choices included. Left out: name,
             seed, num_seeds and num_epochs (their own columns), a sweep point's axes
             (its name), and a model family's own fields (their defaults live with the
             model code).
             A terminal cuts this column to fit; --json has every field.

Folders that --fresh set aside (`<workdir>.old-<date>-<time>`) and their runs are listed
only with --all. --json prints one JSON list (a dict per run, accuracies as fractions, all
overrides) for scripts. Reads files only: no jax, nothing written.
"""
from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import re
import shutil
import socket
import sys

from experiments.sweep.names import slug

SKIP = {"checkpoints", "tb"}  # a workdir's own folders, never runs
OLD = re.compile(r"\.old-\d{8}-\d{6}$")  # digitjax.workdir.set_aside's names
NOT_OVERRIDES = {"name", "seed", "num_seeds", "num_epochs", "provenance"}


def workdirs(root: str, include_old: bool = False) -> list[str]:
  """Every folder under root (root included) that holds config.json, sorted by path;
  folders set aside by --fresh (and everything under them) only with include_old."""
  found = []
  for path, dirs, files in os.walk(root):
    dirs[:] = sorted(d for d in dirs if d not in SKIP and not d.startswith(".")
                     and (include_old or not OLD.search(d)))
    if "config.json" in files:
      found.append(path)
  return sorted(found)


def _read_json(path: str):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _history(workdir: str) -> list[dict]:
  records = []
  try:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      for line in f:
        try:
          records.append(json.loads(line))
        except ValueError:
          continue  # a line cut short by a crash
  except OSError:
    pass
  return [r for r in records if isinstance(r, dict) and "epoch" in r]


def _running(workdir: str) -> bool:
  """Whether the workdir's lock names a process alive on this machine (reads the lock
  file only; taking the lock, even briefly, could refuse a run starting just then)."""
  try:
    with open(os.path.join(workdir, ".lock")) as f:
      words = f.read(1000).split()
  except OSError:
    return False
  if len(words) < 4 or words[0] != "pid" or words[2] != "on" or not words[1].isdigit():
    return False
  if words[3].rstrip(",") != socket.gethostname():
    return False
  try:
    os.kill(int(words[1]), 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def _seeds(config: dict) -> str:
  first, n = config.get("seed", 0), config.get("num_seeds", 1) or 1
  return str(first) if n == 1 else f"{first}-{first + n - 1}"


def best_records(history: list[dict], config: dict) -> dict:
  """{seed: the record of its best epoch} by config.monitor, as digitjax.callbacks.
  track_best picks it: the first epoch of the best value, or with early stopping the last
  that improved by more than its min_delta. Seeds whose records lack the monitored
  figure (a run without validation) have none."""
  monitor = config.get("monitor") or "val_loss"
  es = config.get("early_stopping") or {}
  min_delta = (es.get("min_delta") or 0.0) if es.get("enabled") else 0.0
  sign = 1.0 if monitor == "val_loss" else -1.0  # lower is better, as a loss
  best = {}
  for r in sorted(history, key=lambda r: r["epoch"]):
    value = r.get(monitor)
    if value is None:
      continue
    seed, score = r.get("seed", 0), sign * value
    if seed not in best or score < sign * best[seed][monitor] - min_delta:
      best[seed] = r
  return best


def sweep_point(workdir: str, flat: dict) -> dict | None:
  """{axis: value} of a sweep point's run (experiments/sweep/names.py names a point's folder
  `axis=value,axis=value` and runs its seeds in seed<k>/ under it), read from the folder
  name and confirmed by config.json holding those values; None for any other run."""
  for folder in (os.path.basename(workdir), os.path.basename(os.path.dirname(workdir))):
    parts = re.split(r",(?=[\w.]+=)", folder)
    pairs = [p.partition("=") for p in parts]
    if all(eq and key in flat and slug(flat[key]) == value for key, eq, value in pairs):
      return {key: value for key, _, value in pairs}
  return None


def overrides(flat: dict, skip=()) -> dict:
  """The fields of a run's flattened config.json that differ from the schema's defaults
  (digitjax.config.schema(); imported here, it needs ml_collections, not jax), in the
  schema's order; see the module's docstring for what is left out."""
  out = {}
  for key, default in _schema().items():
    if key in NOT_OVERRIDES or key in skip or key not in flat:
      continue
    if flat[key] != default:
      out[key] = flat[key]
  return out


@functools.cache
def _schema() -> dict:
  from digitjax import config as config_lib

  return config_lib.schema()


def _started(workdir: str, config: dict) -> str | None:
  """The run's first start, ISO UTC: tensorboardX names each event file by the time its
  writer opened (every start opens one), so the oldest is the first start."""
  try:
    names = os.listdir(os.path.join(workdir, "tb"))
  except OSError:
    names = []
  stamps = [int(m.group(1)) for n in names if (m := re.match(r"events\.out\.tfevents\.(\d+)", n))]
  if stamps:
    when = datetime.datetime.fromtimestamp(min(stamps), datetime.timezone.utc)
    return when.isoformat(timespec="seconds")
  provenance = config.get("provenance")
  date = provenance.get("date") if isinstance(provenance, dict) else None
  return date if isinstance(date, str) else None


def _scored(out: dict, history: list[dict], config: dict, results: dict | None) -> None:
  """Fills val_accuracy and best_epoch: results.json's own when finished (each seed's
  best_epoch, their mean val figure), else the best records of metrics.jsonl."""
  if results is not None:
    per_seed = results.get("per_seed") or [results]
    out["best_epoch"] = [p["best_epoch"] for p in per_seed if isinstance(p, dict)
                         and p.get("best_epoch") is not None]
    out["val_accuracy"] = results.get("val_accuracy")
    return
  best = best_records(history, config)
  out["best_epoch"] = [best[s]["epoch"] for s in sorted(best)]
  vals = [best[s]["val_accuracy"] for s in sorted(best)
          if best[s].get("val_accuracy") is not None]
  out["val_accuracy"] = sum(vals) / len(vals) if vals else None


def describe(workdir: str) -> dict:
  """One run as JSON-ready fields (what --json prints; accuracies as fractions)."""
  config = _read_json(os.path.join(workdir, "config.json"))
  out = dict(path=workdir, name="?", sweep_point=None, seeds="?", status="",
             epochs=None, num_epochs=None, best_epoch=[], val_accuracy=None,
             test_accuracy=None, started=None, wall_seconds=None, overrides={})
  if not isinstance(config, dict):
    out["status"] = "failed: damaged config.json"
    return out
  from digitjax import config as config_lib
  flat = config_lib.flatten(config)
  point = sweep_point(workdir, flat)
  out.update(name=str(config.get("name", "?")), sweep_point=point, seeds=_seeds(config),
             num_epochs=config.get("num_epochs"), started=_started(workdir, config),
             overrides=overrides(flat, skip=point or ()))
  history = _history(workdir)
  epochs = max((r["epoch"] for r in history), default=0)
  first_seed = history[0].get("seed", 0) if history else None
  train_time = sum(r.get("time", 0.0) for r in history if r.get("seed", 0) == first_seed)
  has_results = os.path.exists(os.path.join(workdir, "results.json"))
  results = _read_json(os.path.join(workdir, "results.json")) if has_results else None
  results = results if isinstance(results, dict) else None
  _scored(out, history, config, results)
  out.update(epochs=epochs or None, wall_seconds=train_time or None)
  if results is not None:
    runs = [p.get("epochs_run") for p in results.get("per_seed") or [results]
            if isinstance(p, dict)]
    out.update(status="finished", test_accuracy=results.get("test_accuracy"),
               epochs=max([e for e in runs if e is not None], default=epochs) or None,
               wall_seconds=results.get("wall_seconds", train_time or None))
  elif has_results:
    out["status"] = "failed: damaged results.json"
  elif _running(workdir):
    out["status"] = "running"
  else:
    out["status"] = "stopped" if epochs else "empty"
  return out


def _wall(seconds) -> str:
  if seconds is None:
    return "-"
  seconds = int(round(seconds))
  if seconds < 60:
    return f"{seconds} s"
  if seconds < 3600:
    return f"{seconds // 60} min {seconds % 60:02d} s"
  return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _pct(x) -> str:
  return "-" if x is None else f"{100 * x:.2f}%"


def _val_cell(d: dict) -> str:
  if d["val_accuracy"] is None:
    return "-"
  epochs = d["best_epoch"]
  at = "" if not epochs else f" @{min(epochs)}" + (
      f"-{max(epochs)}" if max(epochs) != min(epochs) else "")
  return _pct(d["val_accuracy"]) + at


def compact(fields: dict) -> str:
  """`field=value ...`, a field by the last part of its name where no other field of the
  schema ends so (image_size=150, but early_stopping.patience=10, model.name=vgg16)."""
  ends = [k.rsplit(".", 1)[-1] for k in {**_schema(), **fields}]
  short = lambda k: k.rsplit(".", 1)[-1]
  return " ".join(f"{short(k) if ends.count(short(k)) == 1 else k}={slug(v)}"
                  for k, v in fields.items())


def _cells(d: dict, root: str) -> list[str]:
  name = d["name"]
  if d["sweep_point"]:
    name = " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in d["sweep_point"].items())
  epochs = "-" if d["epochs"] is None else f"{d['epochs']}/{d['num_epochs'] or '?'}"
  started = (d["started"] or "-")[:16].replace("T", " ")
  return [os.path.relpath(d["path"], root), name, d["seeds"], d["status"], epochs,
          _val_cell(d), _pct(d["test_accuracy"]), started, _wall(d["wall_seconds"]),
          compact(d["overrides"]) or "-"]


HEADER = ["path", "name", "seeds", "status", "epochs", "val @best", "test", "started",
          "wall time", "overrides"]


def table(root: str, include_old: bool = False, width: int | None = None) -> list[str]:
  """The lines `python -m experiments.list_runs root` prints: a header, then one per run;
  width (a terminal's) cuts the last column, overrides, to fit it."""
  rows = [_cells(describe(wd), root) for wd in workdirs(root, include_old)]
  widths = [max(len(r[i]) for r in rows + [HEADER]) for i in range(len(HEADER))]
  room = None if width is None else max(width - sum(w + 2 for w in widths[:-1]), 12)

  def fmt(r):
    last = r[-1] if room is None or len(r[-1]) <= room else r[-1][:room - 1] + "…"
    return "  ".join([c.ljust(w) for c, w in zip(r[:-1], widths)] + [last]).rstrip()

  return [fmt(HEADER)] + [fmt(r) for r in rows]


def main(argv=None):
  parser = argparse.ArgumentParser(
      prog="python -m experiments.list_runs", description=__doc__.split("\n\n", 1)[0],
      epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("root", nargs="?", default="runs", metavar="DIR",
                      help="the folder to list (default runs/)")
  parser.add_argument("--all", action="store_true",
                      help="also the runs --fresh set aside (<workdir>.old-<date>-<time>)")
  parser.add_argument("--json", action="store_true",
                      help="one JSON list on stdout, a dict per run, for scripts")
  args = parser.parse_args(sys.argv[1:] if argv is None else argv)
  if not os.path.isdir(args.root):
    print(f"error: {args.root} is not a folder (runs go under runs/ by default)",
          file=sys.stderr)
    sys.exit(2)
  if args.json:
    print(json.dumps([describe(wd) for wd in workdirs(args.root, args.all)], indent=1))
    return
  width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
  lines = table(args.root, args.all, width)
  if len(lines) == 1:
    print(f"No runs under {args.root} (a run is a folder with config.json).")
    return
  print("\n".join(lines))


if __name__ == "__main__":
  main()
