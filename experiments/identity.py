"""Moved to `python -m experiments.refactor_check`; this name goes in the next release
(experiments/_moved.py)."""
if __name__ == "__main__":
  from experiments import _moved
  _moved.run("experiments.identity", "experiments.refactor_check")
