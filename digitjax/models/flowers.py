"""Report E's own flowers CNNs (E1 and the E6 "v7" ladder), one family read from config.

The report grows one small CNN step by step (E6); each step changes a few knobs, so the
knobs are config fields (this family's own FIELDS below, and the shared dropout and
hidden_units) and every step is the same function below, not a copy of it. The ladder's
configs live in configs/report_e.py.
"""
from __future__ import annotations

from digitjax.models.layers import INPUT_FIELDS, PADDINGS, check_input_fields, input_rescaling

HEADS = ("flatten", "gap")

# flowers_cnn's own config.model fields and their defaults (the TF flowers tutorial's).
FIELDS = dict(
    filters=(16, 32, 64),  # conv filters per block
    kernel_sizes=(3, 3, 3),  # conv kernel per block (same length as filters)
    padding="same",  # the convs' Keras padding: same | valid
    batch_norm=False,  # BatchNormalization after every conv
    first_pool=(2, 2),  # (pool size, stride) of the first max-pooling
    block_dropout=(),  # Dropout rate after each block's pooling; () = none
    head="flatten",  # flatten | gap (GlobalAveragePooling2D) before the dense layers
    **INPUT_FIELDS,  # a Keras Rescaling(scale, offset) re-expressed on [0, 1] images
)


def flowers_cnn(m, num_classes, impl):
  """E1 / E6: [Rescaling] -> (Conv -> [BN] -> MaxPool -> [Dropout]) per block -> head ->
  Dense layers -> [Dropout] -> Dense classes.

  Written as Keras's Sequential models of report E write it (`Conv2D(f, k,
  activation='relu')`, `MaxPooling2D()`):
  - model.input_scale / input_offset: digitjax feeds [0, 1] images, so Keras's
    Rescaling(1/255) is scale 1 (no layer), Rescaling(1/127.5, offset=-1) is scale 2,
    offset -1, raw [0, 255] pixels scale 255;
  - model.filters / kernel_sizes / padding: one conv block each; MaxPool 2 after every
    conv, the first one model.first_pool = (size, stride) (E6 step 4: (3, 2));
  - model.batch_norm: BatchNormalization after every conv (E6 step 4 onwards);
  - model.block_dropout: one Dropout rate per block, after its pooling (E6 steps 2-3);
  - model.head: "flatten" or "gap" (GlobalAveragePooling2D, E6 step 2 onwards);
  - model.hidden_units, then model.dropout before the classifier (E6 steps 0-1).
  """
  layers = input_rescaling(m)
  rates = tuple(m.block_dropout) or (0.0,) * len(m.filters)
  for i, (f, k, rate) in enumerate(zip(m.filters, m.kernel_sizes, rates)):
    layers.append(("Conv", dict(features=f, kernel_size=k, padding=m.padding, impl=impl,
                                l2=m.l2)))
    if m.batch_norm:
      layers.append(("BatchNorm", {}))
    size, stride = m.first_pool if i == 0 else (2, 2)
    layers.append(("MaxPool", dict(pool_size=size, strides=stride)))
    if rate:
      layers.append(("Dropout", dict(rate=rate)))
  layers.append(("GlobalAvgPool", {}) if m.head == "gap" else ("Flatten", {}))
  for h in m.hidden_units:
    layers.append(("Dense", dict(features=h, activation="relu")))
  if m.dropout:
    layers.append(("Dropout", dict(rate=m.dropout)))
  layers.append(("Dense", dict(features=num_classes, activation=None)))
  return layers


def check(check, m) -> None:
  """config.validate's checks of flowers_cnn's own fields (check: its collector)."""
  for path, example in (("filters", "(32,64,128)"), ("kernel_sizes", "(3,3,5)"),
                        ("first_pool", "(3,2)")):
    check.positive_ints(f"model.{path}", m[path], example)
  check_input_fields(check, m)
  check.one_of("model.head", m.head, HEADS)
  check.boolean("model.batch_norm", m.batch_norm)
  check.one_of("model.padding", m.padding, PADDINGS)
  rates = m.block_dropout
  if not isinstance(rates, (tuple, list)) or not all(
      isinstance(r, (int, float)) and 0 <= r < 1 for r in rates) or (
      rates and len(rates) != len(m.filters)):
    check.errors.append(f"config.model.block_dropout={rates!r} must be () or one rate in "
                        f"[0, 1) per conv block of config.model.filters={tuple(m.filters)!r}"
                        ", e.g. --config.model.block_dropout='(0.5,0.5,0.2)'.")
  if len(m.kernel_sizes) != len(m.filters):
    check.errors.append(f"config.model.kernel_sizes={tuple(m.kernel_sizes)!r} needs one "
                        f"kernel size per conv block of config.model.filters="
                        f"{tuple(m.filters)!r}.")
  if len(m.first_pool) != 2:
    check.errors.append(f"config.model.first_pool={tuple(m.first_pool)!r} must be "
                        "(pool size, stride), e.g. (3,2).")
