"""Moved to `python -m experiments.list_runs`; this name goes in the next release
(experiments/_moved.py)."""
if __name__ == "__main__":
  from experiments import _moved
  _moved.run("experiments.runs", "experiments.list_runs")
