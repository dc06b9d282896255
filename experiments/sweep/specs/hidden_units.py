"""Report A (A2/A3): how wide should the hidden layer be, sigmoid or ReLU?

  ./launch.sh sweep experiments/sweep/specs/hidden_units.py

784 -> D h -> D 10 on MNIST, SGD (Keras defaults), batch 128, 20 epochs, early stopping
on val_loss with patience 5 (report A's protocol), 3 seeds per point, trained side by
side in one program.
"""
from digitjax import config as base


def get_sweep():
  c = base.get_config()
  c.model.name = "mlp"
  c.optimizer.name = "sgd"
  c.batch_size = 128
  c.num_epochs = 20
  c.early_stopping.enabled = True
  c.early_stopping.patience = 5
  return dict(name="report_a_hidden_units", base=c, seeds=3, metric="test_accuracy",
              axes={"model.hidden_units": [(32,), (64,), (128,), (256,), (512,), (1024,)],
                    "model.hidden_activation": ["sigmoid", "relu"]})
