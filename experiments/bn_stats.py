"""Moved to `python -m experiments.batchnorm_eval`; this name goes in the next release
(experiments/_moved.py)."""
if __name__ == "__main__":
  from experiments import _moved
  _moved.run("experiments.bn_stats", "experiments.batchnorm_eval")
