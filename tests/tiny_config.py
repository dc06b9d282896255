"""A tiny real-MNIST run for tests: 2,000 train images, a 32-unit MLP, 1,000 test images.

  python -m digitjax.main --config=tests/tiny_config.py --workdir=/tmp/tiny
"""
from digitjax import config as base


def get_config():
  c = base.get_config()
  c.name = "tiny"
  c.model.name = "mlp"
  c.model.hidden_units = (32,)
  c.optimizer.name = "adam"
  c.dataset.max_train_examples = 2000
  c.dataset.max_test_examples = 1000
  c.dataset.download = False
  c.batch_size = 100
  c.eval_batch_size = 500
  c.num_epochs = 2
  return c
