"""`python -m experiments.reproduce`: the command of experiments/reproduce/run.py."""
from experiments.reproduce.run import main

if __name__ == "__main__":
  main()
