"""Dropout on or off, in B1's MLP (784 -> 512 -> 512 -> 10, RMSprop, batch 128, 20 epochs).

  ./launch.sh sweep experiments/sweep/specs/dropout.py
"""
from digitjax import config as base


def get_sweep():
  c = base.get_config()
  c.model.name = "mlp"
  c.model.hidden_units = (512, 512)
  c.optimizer.name = "rmsprop"
  c.batch_size = 128
  c.num_epochs = 20
  return dict(name="dropout_mlp", base=c, seeds=3, metric="test_accuracy",
              axes={"model.dropout": [0.0, 0.2, 0.5]})
