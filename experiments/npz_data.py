"""Moved to `python -m experiments.without_tfds`; this name goes in the next release
(experiments/_moved.py)."""
if __name__ == "__main__":
  from experiments import _moved
  _moved.run("experiments.npz_data", "experiments.without_tfds")
