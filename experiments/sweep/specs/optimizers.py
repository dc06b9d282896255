"""Report E's optimizer study, on a small net that trains on a CPU: MNIST, B3's CNN.

  ./launch.sh sweep experiments/sweep/specs/optimizers.py

Report E compared SGD, Adam, Adadelta and Adagrad on AlexNet/VGG16 for flowers; the same
question on Conv 32 3x3 -> MP 2 -> D 10 (REPORTS.md B3), each optimizer with Keras's
default learning rate, batch 32, 10 epochs, 3 seeds.
"""
from digitjax import config as base


def get_sweep():
  c = base.get_config()
  c.model.name = "cnn_single"
  c.batch_size = 32
  c.num_epochs = 10
  return dict(name="optimizers_small_cnn", base=c, seeds=3, metric="test_accuracy",
              axes={"optimizer.name": ["sgd", "momentum", "rmsprop", "adam", "adadelta",
                                       "adagrad"]})
