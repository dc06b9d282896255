"""Is one set of seeds better than another? Welch's t-test between the two.

  python -m experiments.compare runs/a runs/b            # two workdirs (or sweep points)
  python -m experiments.compare B6 B6a                    # two reproduce rows
  python -m experiments.compare runs/sweeps/x/p=1 runs/sweeps/x/p=2 --metric val_accuracy

A side is a folder (every finished run under it: a workdir, a sweep point, a reproduce
row's folder; each seed once) or a reproduce row id (its runs under runs/reproduce, read
the report's way; without runs, the committed table's mean, std and seeds). Prints each
side's n, mean, std and 95% CI, the difference B - A with its 95% CI, and Welch's t, dof
and two-sided p (scipy.stats.ttest_ind(equal_var=False)). Accuracies print in %.

Why here, at the top of experiments/: a side is a reproduce row or any folder of runs
(a sweep point, a workdir), so the test serves both reproduce/ and sweep/.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys

from experiments.reproduce import runner


def _folder_values(path: str, metric: str) -> list[float]:
  """The metric of every finished seed under path (results.json files; a seed found in
  two layouts counts once, the first in path order)."""
  found = {}
  for root, dirs, files in os.walk(path):
    dirs[:] = sorted(d for d in dirs if d not in ("checkpoints", "tb"))
    if "results.json" not in files:
      continue
    try:
      with open(os.path.join(root, "results.json")) as f:
        results = json.load(f)
    except (OSError, ValueError):
      continue
    for k, p in enumerate(runner.per_seed(results)):
      if p.get(metric) is not None:
        found.setdefault(p.get("seed", (root, k)), float(p[metric]))
  return list(found.values())


def _row_side(row_id: str, workroot: str):
  """A reproduce row: its seeds' figures (in %) from runs under workroot, else the
  committed table's summary (dict of n, mean, std). Returns (values or summary, source)."""
  from experiments.reproduce import catalogue, run

  row = {r.id: r for r in catalogue.ROWS}[row_id]
  runs = run.finished_entries(row, catalogue.load_config(row.config),
                                    os.path.join(workroot, row_id))
  if runs:
    return [r["accuracy"] for r in runs], f"runs under {workroot}/{row_id}"
  table = os.path.join(catalogue.ROOT, "experiments", "results", f"{row.report}.csv")
  with open(table, newline="") as f:
    old = {r["row"]: r for r in csv.DictReader(f)}.get(row_id)
  if not old or not old.get("ours mean %"):
    raise ValueError(f"row {row_id} has no finished run under {workroot} and no figures "
                     f"in {os.path.relpath(table, catalogue.ROOT)}")
  summary = dict(n=int(old["seeds"]), mean=float(old["ours mean %"]),
                 std=float(old["ours std"] or 0))
  return summary, f"{os.path.relpath(table, catalogue.ROOT)} (mean, std, seeds as committed)"


def load_side(spec: str, metric: str, workroot: str):
  """(values or summary dict, what they are) for a folder or a reproduce row id."""
  from experiments.reproduce import catalogue

  if os.path.isdir(spec):
    values = _folder_values(spec, metric)
    if not values:
      raise ValueError(f"{spec}: no finished run with {metric} under it (results.json)")
    scale = 100.0 if "accuracy" in metric else 1.0
    return [scale * v for v in values], f"{len(values)} finished seed(s) under {spec}"
  if spec in {r.id for r in catalogue.ROWS}:
    return _row_side(spec, workroot)
  raise ValueError(f"{spec!r} is neither a folder nor a reproduce row id (e.g. B6)")


def _check_metric(a: str, b: str, metric: str) -> None:
  """A reproduce row gives the accuracy (%) its report published, whatever --metric says:
  beside a folder's loss it would compare a loss with a percentage."""
  from digitjax import reporting
  from experiments.reproduce import catalogue

  if metric not in reporting.SEED_STATS:
    raise ValueError(f"--metric {metric!r} is not a figure a run reports; known: "
                     f"{', '.join(reporting.SEED_STATS)}")
  rows = [x for x in (a, b) if not os.path.isdir(x) and x in {r.id for r in catalogue.ROWS}]
  if rows and "accuracy" not in metric:
    raise ValueError(f"row {rows[0]} gives the accuracy (%) its report published, not "
                     f"{metric}: compare two folders of runs for {metric}, or leave "
                     "--metric out")


def _line(name: str, s: dict) -> str:
  ci = f"[{s['ci'][0]:.4f}, {s['ci'][1]:.4f}]" if s.get("ci") else "undefined (1 seed)"
  return (f"{name}: n {s['n']}, mean {s['mean']:.4f}, std {s['std']:.4f}, 95% CI {ci}")


def compare(a: str, b: str, metric: str = "test_accuracy",
            workroot: str = os.path.join("runs", "reproduce")) -> str:
  """The report `python -m experiments.compare A B` prints."""
  from digitjax import reporting

  _check_metric(a, b, metric)
  (va, what_a), (vb, what_b) = (load_side(x, metric, workroot) for x in (a, b))
  unit = " (%)" if "accuracy" in metric else ""
  lines = [f"{metric}{unit}", f"A = {a}: {what_a}", f"B = {b}: {what_b}"]
  try:
    w = reporting.welch(va, vb)
  except ValueError as e:
    raise ValueError(f"{e}: run more seeds") from None
  lines += [_line("A", w["a"]), _line("B", w["b"]),
            f"B - A: {w['diff']:+.4f}, 95% CI [{w['diff_ci'][0]:+.4f}, {w['diff_ci'][1]:+.4f}]"
            f", Hedges' g {w['hedges_g']:+.2f}",
            f"Welch's t-test: t {w['t']:.3f}, dof {w['dof']:.2f}, p {w['p']:.4f} "
            f"({'significant' if w['p'] < 0.05 else 'not significant'} at the 5% level)"]
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(
      prog="python -m experiments.compare",
      description="Welch's t-test between two sets of seeds: two workdirs, sweep points "
                  "or reproduce rows (e.g. B6 B6a).")
  parser.add_argument("a", help="a folder of finished runs, or a reproduce row id")
  parser.add_argument("b", help="the same, for the other side")
  parser.add_argument("--metric", default="test_accuracy",
                      help="a results.json figure (folders; default test_accuracy). Rows "
                           "always give the figure their report published.")
  parser.add_argument("--workroot", default=os.path.join("runs", "reproduce"),
                      help="where reproduce rows' runs are (default runs/reproduce)")
  args = parser.parse_args(argv)
  try:
    print(compare(args.a, args.b, args.metric, args.workroot))
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  main()
