"""Moved to `python -m experiments.perf.bench`; this name goes in the next release
(experiments/_moved.py)."""
if __name__ == "__main__":
  from experiments import _moved
  _moved.run("experiments.bench", "experiments.perf.bench")
