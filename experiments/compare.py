"""Is one set of seeds better than another? A t-test between the two, and how large.

  python -m experiments.compare runs/a runs/b            # two workdirs (or sweep points)
  python -m experiments.compare B6 B6a                    # two reproduce rows
  python -m experiments.compare runs/sweeps/x/p=1 runs/sweeps/x/p=2 --metric val_accuracy

A side is a folder (every finished run under it: a workdir, a sweep point, a reproduce
row's folder; each seed once) or a reproduce row id (its seeds under runs/reproduce and in
experiments/results/seeds.csv, read the report's way; with neither, the committed table's
mean, std and number of seeds). Accuracies print in %. Prints each side's n, mean, std and
95% CI, the difference of means B - A with its 95% CI and Hedges' g, then one test, named:

- paired t-test on the per-seed differences (scipy.stats.ttest_rel), when both sides hold
  the same seeds: seed k of each side shares its data order, validation split and (same
  model) initial weights, so pairing removes what the seed alone moves;
- Welch's t-test (scipy.stats.ttest_ind, equal_var=False) otherwise, or with --unpaired;
  the output says why it was not paired.

The rule is fixed before the numbers are seen: reporting whichever test gives the smaller
p would overclaim. "Significant at the 5% level" says only that p < 0.05 under that test's
assumptions (normal per-seed figures); with 3 seeds a side, the CI says more than the verdict.

Why here, at the top of experiments/: a side is a reproduce row or any folder of runs
(a sweep point, a workdir), so the test serves both reproduce/ and sweep/.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys



def _folder_values(path: str, metric: str) -> dict:
  """{seed: the metric} of every finished seed under path (results.json files; a seed
  found in two layouts counts once, the first in path order; a seed results.json does
  not name is keyed by its file, and pairs with nothing)."""
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
    for k, p in enumerate(results.get("per_seed") or [results]):
      if isinstance(p, dict) and p.get(metric) is not None:
        found.setdefault(p.get("seed", (root, k)), float(p[metric]))
  return found


def _row_side(row_id: str, workroot: str):
  """A reproduce row: {seed: figure in %} of its seeds under workroot and in the
  committed ledger (seeds.csv, the lines of the row's config today), as the tables count
  them; with neither, the committed table's summary (dict of n, mean, std). Returns
  (values, summary, source), one of values and summary None."""
  from experiments.reproduce import catalogue, ledger, run

  row = {r.id: r for r in catalogue.ROWS}[row_id]
  config = catalogue.load_config(row.config)
  found = run.finished_entries(row, config, os.path.join(workroot, row_id))
  results = os.path.join(catalogue.ROOT, "experiments", "results")
  entries = ledger.merge(row_id, config, found, ledger.read(results))
  if entries:
    where = [f"runs under {workroot}/{row_id}"] if found else []
    if len(entries) > len(found):
      where.append(f"experiments/results/{ledger.NAME}")
    return {e["seed"]: e["accuracy"] for e in entries}, None, " and ".join(where)
  table = os.path.join(results, f"{row.report}.csv")
  with open(table, newline="") as f:
    old = {r["row"]: r for r in csv.DictReader(f)}.get(row_id)
  if not old or not old.get("ours mean %"):
    raise ValueError(f"row {row_id} has no finished run under {workroot} and no figures "
                     f"in {os.path.relpath(table, catalogue.ROOT)}")
  summary = dict(n=int(old["seeds"]), mean=float(old["ours mean %"]),
                 std=float(old["ours std"] or 0))
  return None, summary, (f"{os.path.relpath(table, catalogue.ROOT)} (mean, std, seeds as "
                         "committed)")


def load_side(spec: str, metric: str, workroot: str):
  """(values {seed: figure} or None, summary or None, what they are) for a folder or a
  reproduce row id."""
  from experiments.reproduce import catalogue

  if os.path.isdir(spec):
    values = _folder_values(spec, metric)
    if not values:
      raise ValueError(f"{spec}: no finished run with {metric} under it (results.json)")
    scale = 100.0 if "accuracy" in metric else 1.0
    return ({k: scale * v for k, v in values.items()}, None,
            f"{len(values)} finished seed(s) under {spec}")
  if spec in {r.id for r in catalogue.ROWS}:
    return _row_side(spec, workroot)
  raise ValueError(f"{spec!r} is neither a folder nor a reproduce row id (e.g. B6)")


def _check_metric(a: str, b: str, metric: str) -> None:
  """A reproduce row gives the accuracy (%) its report published, whatever --metric says:
  beside a folder's loss it would compare a loss with a percentage."""
  from digitjax import seed_stats
  from experiments.reproduce import catalogue

  if metric not in seed_stats.SEED_STATS:
    raise ValueError(f"--metric {metric!r} is not a figure a run reports; known: "
                     f"{', '.join(seed_stats.SEED_STATS)}")
  rows = [x for x in (a, b) if not os.path.isdir(x) and x in {r.id for r in catalogue.ROWS}]
  if rows and "accuracy" not in metric:
    raise ValueError(f"row {rows[0]} gives the accuracy (%) its report published, not "
                     f"{metric}: compare two folders of runs for {metric}, or leave "
                     "--metric out")


def _line(name: str, s: dict) -> str:
  ci = f"[{s['ci'][0]:.4f}, {s['ci'][1]:.4f}]" if s.get("ci") else "undefined (1 seed)"
  return (f"{name}: n {s['n']}, mean {s['mean']:.4f}, std {s['std']:.4f}, 95% CI {ci}")


def paired(a: dict, b: dict, confidence: float = 0.95) -> dict:
  """The paired t-test of b - a over the seeds both hold ({seed: value} each, the same
  seeds; scipy.stats.ttest_rel): each side summarized, the mean difference with its
  t-interval (n - 1 dof), t, dof and p, and Hedges' g (as welch gives it)."""
  from digitjax import seed_stats
  from scipy import stats

  seeds = sorted(a)
  if sorted(b) != seeds or len(seeds) < 2:
    raise ValueError("a paired t-test needs the same 2 or more seeds on both sides")
  va, vb = [a[k] for k in seeds], [b[k] for k in seeds]
  d = seed_stats.summarize([y - x for x, y in zip(va, vb)], confidence)
  sa, sb = seed_stats.summarize(va, confidence), seed_stats.summarize(vb, confidence)
  out = dict(a=sa, b=sb, diff=d["mean"], diff_ci=d["ci"], dof=float(len(seeds) - 1),
             seeds=seeds, hedges_g=seed_stats.hedges_g(sa, sb))
  if d["std"] == 0:  # every seed moved by the same amount: t undefined
    return dict(out, t=float("nan"), p=0.0 if d["mean"] else 1.0)
  test = stats.ttest_rel(vb, va)
  return dict(out, t=float(test.statistic), p=float(test.pvalue))


def _seeds_text(seeds) -> str:
  if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
    return f"seeds {seeds[0]}-{seeds[-1]}"
  return "seeds " + ", ".join(map(str, seeds))


def why_unpaired(a, b, unpaired: bool) -> str | None:
  """Why the sides cannot be paired (None: they can): a summary has no seeds, the seed
  sets differ, fewer than 2 seeds, or --unpaired."""
  if unpaired:
    return "--unpaired"
  if a is None or b is None:
    return f"side {'A' if a is None else 'B'} is a table's summary, not per-seed figures"
  if not all(isinstance(k, int) for k in [*a, *b]):
    return "a results.json does not name its seeds"
  if sorted(a) != sorted(b):
    return (f"the sides hold different seeds (A: {_seeds_text(sorted(a))}; B: "
            f"{_seeds_text(sorted(b))})")
  return "fewer than 2 seeds" if len(a) < 2 else None


def _verdict(p: float) -> str:
  return f"{'significant' if p < 0.05 else 'not significant'} at the 5% level"


def compare(a: str, b: str, metric: str = "test_accuracy",
            workroot: str = os.path.join("runs", "reproduce"), unpaired: bool = False) -> str:
  """The report `python -m experiments.compare A B` prints."""
  from digitjax import seed_stats

  _check_metric(a, b, metric)
  (va, sa, what_a), (vb, sb, what_b) = (load_side(x, metric, workroot) for x in (a, b))
  unit = " (%)" if "accuracy" in metric else ""
  lines = [f"{metric}{unit}", f"A = {a}: {what_a}", f"B = {b}: {what_b}"]
  why = why_unpaired(va, vb, unpaired)
  if why is None:
    w = paired(va, vb)
    how = f"mean of the per-seed differences, {_seeds_text(w['seeds'])}"
    test = (f"Paired t-test on the per-seed differences B - A (both sides hold "
            f"{_seeds_text(w['seeds'])}; scipy.stats.ttest_rel)")
  else:
    try:
      w = seed_stats.welch(sa or list(va.values()), sb or list(vb.values()))
    except ValueError as e:
      raise ValueError(f"{e}: run more seeds") from None
    how = "difference of the means, Welch"
    test = f"Welch's t-test (unpaired: {why}; scipy.stats.ttest_ind, equal_var=False)"
  lines += [_line("A", w["a"]), _line("B", w["b"]),
            f"B - A: {w['diff']:+.4f}, 95% CI [{w['diff_ci'][0]:+.4f}, {w['diff_ci'][1]:+.4f}]"
            f" ({how}), Hedges' g {w.get('hedges_g', float('nan')):+.2f}",
            f"{test}: t {w['t']:.3f}, dof {w['dof']:.2f}, p {w['p']:.4f} ({_verdict(w['p'])})"]
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(
      prog="python -m experiments.compare",
      description="A t-test between two sets of seeds: two workdirs, sweep points or "
                  "reproduce rows (e.g. B6 B6a); paired when both hold the same seeds.")
  parser.add_argument("a", help="a folder of finished runs, or a reproduce row id")
  parser.add_argument("b", help="the same, for the other side")
  parser.add_argument("--metric", default="test_accuracy",
                      help="a results.json figure (folders; default test_accuracy). Rows "
                           "always give the figure their report published.")
  parser.add_argument("--workroot", default=os.path.join("runs", "reproduce"),
                      help="where reproduce rows' runs are (default runs/reproduce)")
  parser.add_argument("--unpaired", action="store_true",
                      help="Welch's t-test even when both sides hold the same seeds")
  args = parser.parse_args(argv)
  try:
    print(compare(args.a, args.b, args.metric, args.workroot, args.unpaired))
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  main()
