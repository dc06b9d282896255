"""Sweeps: every point of a grid of config values, over seeds, then aggregated.

  python -m experiments.sweep experiments/sweep/specs/hidden_units.py   (./launch.sh sweep)

  run.py      the command: checks every point, then runs each point's seeds
              (experiments/reproduce/runner.py)
  summary.py  the summary: tables (mean ± std, 95% CI, n) and plot, best picked on val
  names.py    a point's folder name (axis=value,...), also read by experiments/list_runs.py
  specs/      the sweep files, one question each (a Python file defining get_sweep())
"""
