"""Moved to `python -m experiments.perf.epoch_cost`; this name goes in the next release
(experiments/_moved.py)."""
if __name__ == "__main__":
  from experiments import _moved
  _moved.run("experiments.epoch_cost", "experiments.perf.epoch_cost")
