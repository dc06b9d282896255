"""Report C ("Reconocimiento óptico de números manuscritos en MNIST", 2018): rows C1-C3.

  python -m digitjax.main --config=configs/report_c.py:c3_v3

All Adam (Keras defaults, lr 1e-3). The report gives no validation split: 10% of the
training images are carved out, as everywhere in digitjax. Where it gives no batch size
(C1, C2), Keras's fit() default of 32 applies.
"""
from digitjax import config as base
from digitjax import config_files


def _report_c(name, model, batch_size, epochs):
  c = base.get_config()
  c.name = f"report_c/{name}"
  base.choose_model(c, model)  # with its own fields (digitjax.models.FAMILIES)
  c.optimizer.name = "adam"
  c.batch_size = batch_size
  c.num_epochs = epochs
  return c


def c1_v1():
  """C1: D 128 -> D 10, Adam, 15 epochs (batch 32). Published train 99.805%, test 97.62%."""
  c = _report_c("c1_v1", "mlp", 32, 15)
  c.model.hidden_units = (128,)
  return c


def c2_v2():
  """C2: Conv 32 3x3 -> MP 2 -> Drop .25 -> D 10, Adam, 15 epochs (batch 32). Published
  train 99.27%, test 98.22%."""
  return _report_c("c2_v2", "c_v2", 32, 15)


def c3_v3():
  """C3: Conv 32 4x4 -> Conv 64 3x3 -> MP 2 -> Drop .2 -> D 248 -> D 124 -> Drop .4 ->
  D 10, Adam, batch 128, 20 epochs. Published train 99.90%, test 99.15%."""
  return _report_c("c3_v3", "c_v3", 128, 20)


VARIANTS = {f.__name__: f for f in (c1_v1, c2_v2, c3_v3)}


def get_config(variant: str = "c3_v3"):
  return config_files.variant(VARIANTS, variant, "configs/report_c.py")
