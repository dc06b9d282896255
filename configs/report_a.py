"""Report A (Univ. Zaragoza course slides, "P5: redes neuronales en Keras"): rows A1-A5.

  python -m digitjax.main --config=configs/report_a.py:a1_perceptron

Shared by every row (REPORTS.md): MNIST, validation_split=0.1 of the 60,000 training
images (carved with a fixed seed; Keras took the last 10% after one seeded shuffle),
batch 128, EarlyStopping(val_loss, patience 5), test touched once at the end.
A2-A5 publish no figure ("a table per student"): their configs are one representative
student setting each; change the ablated knob with --config.model.hidden_units='(1024,)',
--config.model.hidden_activation=sigmoid, --config.optimizer.name=adam, ...
"""
from digitjax import config as base
from digitjax import config_files


def _report_a(name):
  c = base.get_config()
  c.name = f"report_a/{name}"
  c.dataset.validation_fraction = 0.1
  c.batch_size = 128
  c.num_epochs = 20
  c.early_stopping.enabled = True
  c.early_stopping.patience = 5
  c.optimizer.name = "sgd"  # SGD, Keras default lr 0.01
  c.model.name = "mlp"
  return c


def a1_perceptron():
  """A1: 784 -> Dense 10 sigmoid, SGD, cross-entropy, 20 epochs. Published train 93.54%,
  test 92.78%. Keras's categorical_crossentropy on sigmoid outputs normalises them to
  sum to one (digitjax.steps.compute_loss does the same)."""
  c = _report_a("a1_perceptron")
  c.model.name = "perceptron"
  c.model.output_activation = "sigmoid"
  return c


def a2_mlp1():
  """A2: 784 -> D h -> D 10 (h is the students' ablation, 32..1024). No published figure;
  h = 128 ReLU with SGD here."""
  c = _report_a("a2_mlp1")
  c.model.hidden_units = (128,)
  return c


def a3_mlp2():
  """A3: 784 -> D h1 -> D h2 -> D 10. No published figure; (256, 128) ReLU, SGD here."""
  c = _report_a("a3_mlp2")
  c.model.hidden_units = (256, 128)
  return c


def a4_mlp_dropout():
  """A4: 784 -> D 512 -> Drop 0.2 -> D 10. No published figure; SGD here."""
  c = _report_a("a4_mlp_dropout")
  c.model.hidden_units = (512,)
  c.model.dropout = 0.2
  return c


def a5_l2():
  """A5: kernel L2 penalty 0.01 * sum(w^2) on the dense layers, added to the loss (Keras
  `kernel_regularizer=l2(0.01)`), on A4's network. No published figure."""
  c = a4_mlp_dropout()
  c.name = "report_a/a5_l2"
  c.model.l2 = 0.01
  return c


VARIANTS = {f.__name__: f for f in (a1_perceptron, a2_mlp1, a3_mlp2, a4_mlp_dropout, a5_l2)}


def get_config(variant: str = "a1_perceptron"):
  return config_files.variant(VARIANTS, variant, "configs/report_a.py")
