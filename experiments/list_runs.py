"""List every run under a folder: what it is, how far it got, what it scored.

  python -m experiments.list_runs [DIR]        # default runs/
  ./launch.sh runs [DIR]

A run is a workdir: a folder holding config.json (sweep points, reproduce rows' seeds and
their seed<k> sub-runs included). One line each, sorted by path: the config's name, its
seed(s), its status, the best val accuracy (each seed's best epoch, the mean over seeds),
the test accuracy (results.json; the mean over seeds) and the wall time.

Status: `finished` (results.json), `running (epoch k)` (its lock names a live process on
this machine), `stopped at epoch k` (metrics.jsonl but no results: rerun the same command
to resume), `failed: ...` (a damaged config.json or results.json) or `empty` (no epoch
finished).
"""
from __future__ import annotations

import json
import os
import socket
import sys

SKIP = {"checkpoints", "tb"}  # a workdir's own folders, never runs


def workdirs(root: str) -> list[str]:
  """Every folder under root (root included) that holds config.json, sorted by path."""
  found = []
  for path, dirs, files in os.walk(root):
    dirs[:] = sorted(d for d in dirs if d not in SKIP and not d.startswith("."))
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


def describe(workdir: str) -> dict:
  """One run's line as fields: path, name, seeds, status, best_val, test, wall."""
  config = _read_json(os.path.join(workdir, "config.json"))
  out = dict(path=workdir, name="?", seeds="?", status="", best_val=None, test=None,
             wall=None)
  if not isinstance(config, dict):
    out["status"] = "failed: damaged config.json"
    return out
  out.update(name=str(config.get("name", "?")), seeds=_seeds(config))
  history = _history(workdir)
  per_seed_best = {}
  for r in history:
    if r.get("val_accuracy") is not None:
      seed = r.get("seed", 0)
      per_seed_best[seed] = max(per_seed_best.get(seed, 0.0), r["val_accuracy"])
  if per_seed_best:
    out["best_val"] = sum(per_seed_best.values()) / len(per_seed_best)
  epochs = max((r["epoch"] for r in history), default=0)
  first_seed = history[0].get("seed", 0) if history else None
  train_time = sum(r.get("time", 0.0) for r in history if r.get("seed", 0) == first_seed)
  has_results = os.path.exists(os.path.join(workdir, "results.json"))
  results = _read_json(os.path.join(workdir, "results.json")) if has_results else None
  if isinstance(results, dict):
    out.update(status="finished", test=results.get("test_accuracy"),
               wall=results.get("wall_seconds", train_time or None))
  elif has_results:
    out["status"] = "failed: damaged results.json"
  elif _running(workdir):
    out.update(status=f"running (epoch {epochs})", wall=train_time or None)
  elif epochs:
    out.update(status=f"stopped at epoch {epochs}", wall=train_time or None)
  else:
    out["status"] = "empty"
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


def table(root: str) -> list[str]:
  """The lines `python -m experiments.list_runs root` prints: a header, then one per run."""
  rows = []
  for wd in workdirs(root):
    d = describe(wd)
    pct = lambda x: "-" if x is None else f"{100 * x:.2f}%"
    rows.append([os.path.relpath(wd, root), d["name"], d["seeds"], d["status"],
                 pct(d["best_val"]), pct(d["test"]), _wall(d["wall"])])
  header = ["path", "name", "seeds", "status", "best val", "test", "wall time"]
  widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
  fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
  return [fmt(header)] + [fmt(r) for r in rows]


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  if argv and argv[0] in ("-h", "--help"):
    print(__doc__.strip())
    return
  if len(argv) > 1:
    print(f"error: one folder at most, not {' '.join(argv)}", file=sys.stderr)
    sys.exit(2)
  root = argv[0] if argv else "runs"
  if not os.path.isdir(root):
    print(f"error: {root} is not a folder (runs go under runs/ by default)", file=sys.stderr)
    sys.exit(2)
  lines = table(root)
  if len(lines) == 1:
    print(f"No runs under {root} (a run is a folder with config.json).")
    return
  print("\n".join(lines))


if __name__ == "__main__":
  main()
