"""Is one seed of a report row finished under the row's config as it is today?

  python -m experiments.reproduce.done E6.3 1 [--workroot runs/reproduce]

Exit 0: yes (its workdir under the workroot holds the finished run, or
experiments/results/seeds.csv a line of it); 1: no, train it; 2, with one line: its
workdir holds a run of another config, to be moved aside first.

Why: experiments/cpu_campaign.sh skips what is done. A line of seeds.csv, or a
results.json, of a config changed since (E6.3's and E6.4's Adam epsilon, 2026-12-08) is
not done: a row's tables count a seed only while its identity is the config's today
(experiments/reproduce/ledger.py), and the campaign must train the seed again.
"""
from __future__ import annotations

import argparse
import os
import sys

from digitjax.errors import UserError
from experiments.reproduce import catalogue, ledger, runner


def is_done(row_id: str, seed: int, workroot: str, results: str) -> bool:
  """Whether seed `seed` of the row is finished under the row's config today."""
  rows = {r.id: r for r in catalogue.ROWS}
  if row_id not in rows:
    raise UserError(f"no report row {row_id!r}")
  config = catalogue.load_config(rows[row_id].config)
  config.seed = seed
  workdir = os.path.join(workroot, row_id, f"seed{seed}")
  if os.path.isdir(workdir) and runner.finished(
      workdir, config, advice="Move it aside (runs/superseded/) to train this seed again."):
    return True
  return seed in ledger.current(row_id, config, ledger.read(results))


def main(argv=None):
  p = argparse.ArgumentParser(prog="python -m experiments.reproduce.done",
                              description="Exit 0 when a seed of a report row is finished "
                                          "under the row's config today, 1 when not.")
  p.add_argument("row")
  p.add_argument("seed", type=int)
  p.add_argument("--workroot", default=os.path.join("runs", "reproduce"))
  a = p.parse_args(argv)
  results = os.path.join(catalogue.ROOT, "experiments", "results")
  try:
    sys.exit(0 if is_done(a.row, a.seed, a.workroot, results) else 1)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  main()
