"""Sweeps: every point of a grid of config values, over seeds, then aggregated.

  python -m experiments.sweep experiments/sweep/specs/hidden_units.py   (./launch.sh sweep)

  run.py    the command: runs each point's seeds (experiments/reproduce/runner.py), then
            writes the summary table and plot
  specs/    the sweep files, one question each (a Python file defining get_sweep())
"""
