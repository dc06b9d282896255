"""Report E's own flowers CNNs (E1 and the E6 "v7" ladder), one family read from config.

The report grows one small CNN step by step (E6); each step changes a few knobs, so the
knobs are config fields (this family's own FIELDS below, and the shared dropout and
hidden_units) and every step is the same function below, not a copy of it. The ladder's
configs live in configs/report_e.py.
"""
from __future__ import annotations

# flowers_cnn's own config.model fields and their defaults (the TF flowers tutorial's).
FIELDS = dict(
    filters=(16, 32, 64),  # conv filters per block
    kernel_sizes=(3, 3, 3),  # conv kernel per block (same length as filters)
    batch_norm=False,  # BatchNormalization after every conv
    first_pool=(2, 2),  # (pool size, stride) of the first max-pooling
    head="flatten",  # flatten | gap (GlobalAveragePooling2D) before the dense layers
    input_scale=1.0,  # multiplies the [0, 1] images; 255 = the raw pixels Keras saw
)


def flowers_cnn(m, num_classes, impl):
  """E1 / E6: [Rescaling] -> (Conv same -> [BN] -> MaxPool) per block -> head -> Dense.

  Written as the TensorFlow flowers tutorial writes it (`Conv2D(f, k, padding='same',
  activation='relu')`, `MaxPooling2D()`), the style report E follows:
  - model.input_scale: 255 when the Keras model had no Rescaling(1/255) layer and saw
    raw [0, 255] pixels (E6 steps 0-2); 1 otherwise;
  - model.filters / kernel_sizes: one conv block each; MaxPool 2 after every conv, the
    first one model.first_pool = (size, stride) (E6 step 4: (3, 2));
  - model.batch_norm: BatchNormalization after every conv (E6 step 4 onwards);
  - model.head: "flatten" or "gap" (GlobalAveragePooling2D, E6 step 2 onwards);
  - model.dropout before each dense layer of model.hidden_units, then Dense classes.
  """
  layers = []
  if m.input_scale != 1.0:
    layers.append(("Rescaling", dict(scale=m.input_scale)))
  for i, (f, k) in enumerate(zip(m.filters, m.kernel_sizes)):
    layers.append(("Conv", dict(features=f, kernel_size=k, padding="same", impl=impl,
                                l2=m.l2)))
    if m.batch_norm:
      layers.append(("BatchNorm", {}))
    size, stride = m.first_pool if i == 0 else (2, 2)
    layers.append(("MaxPool", dict(pool_size=size, strides=stride)))
  layers.append(("GlobalAvgPool", {}) if m.head == "gap" else ("Flatten", {}))
  for h in m.hidden_units:
    if m.dropout:
      layers.append(("Dropout", dict(rate=m.dropout)))
    layers.append(("Dense", dict(features=h, activation="relu")))
  if m.dropout:
    layers.append(("Dropout", dict(rate=m.dropout)))
  layers.append(("Dense", dict(features=num_classes, activation=None)))
  return layers
