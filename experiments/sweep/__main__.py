"""`python -m experiments.sweep`: the command of experiments/sweep/run.py."""
from experiments.sweep.run import main

if __name__ == "__main__":
  main()
