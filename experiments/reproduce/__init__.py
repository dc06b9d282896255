"""The reports' rows re-run over seeds and tabulated beside the published figures.

  python -m experiments.reproduce --help        the command (run.py; ./launch.sh reproduce)

  catalogue.py  every row: its config, published figure, metric and epoch budget
  runner.py     one config over seeds in a folder: the layout, the "finished" rule, quick
                mode (shared with experiments/sweep/)
  ledger.py     experiments/results/seeds.csv: every finished seed, across machines
  tables.py     experiments/results/<report>.md and .csv, and the verdict rule
  run.py        runs (or reads back) the chosen rows, then writes the tables

Why a row's figure differs from the published one is written once, in docs/report_<x>.md
under "Row notes"; the tables link there.
"""
