"""Moved to `python -m experiments.keras.models`; this name goes in the next release
(experiments/_moved.py)."""
if __name__ == "__main__":
  from experiments import _moved
  _moved.run("experiments.keras_reference", "experiments.keras.models")
