"""Report B (B6a-c): how early-stopping patience and min_delta change the flagship.

  ./launch.sh sweep experiments/sweep/specs/patience.py

configs/cnn_bn.py with EarlyStopping(val_loss, restore best) up to 100 epochs:
patience {4, 6} x min_delta {1e-4, 1e-3} (B6a = 6/1e-4, B6b = 6/1e-3, B6c = 4/1e-4).
Hours on a 2-core CPU: run it where a GPU is available.
"""
from experiments.reproduce import catalogue


def get_sweep():
  c = catalogue.load_config("configs/cnn_bn.py")
  c.num_epochs = 100
  c.early_stopping.enabled = True
  return dict(name="report_b_patience", base=c, seeds=3, metric="test_accuracy",
              axes={"early_stopping.patience": [4, 6],
                    "early_stopping.min_delta": [1e-4, 1e-3]})
