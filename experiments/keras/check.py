"""Train a report row in Keras itself (Keras 3 on JAX), to ask whether Keras meets its figure.

  python -m experiments.keras.check --row B3 --seeds 3
  python -m experiments.keras.check --row B3 --seeds 3 --validation-split test   # the report's way

When digitjax misses a published figure, the first question is whether Keras, given the
same layers, optimizer, batch size and data, misses it too. This script answers it for
the rows transcribed in KERAS_MODELS (the E6 flowers ladder's steps 0-4 from
experiments/keras/models.py, the very models tests/test_keras_equivalence.py proves
equal to digitjax's): the row's digitjax config supplies the optimizer,
learning rate, momentum, batch size, epochs, early stopping, ReduceLROnPlateau, the input
noise and the data splits (digitjax.data, so the same images in the same 54k/6k/10k
split), and Keras trains with its own initialisers, shuffling, loss (clipped
cross-entropy), regularisers and optimizer code. It prints the last epoch's train
accuracy (Keras's running average, as the reports quote it), val and test accuracy per
seed, the best val and best test accuracy over the epochs, and mean ± std (report E
publishes the best val accuracy, and its "test" split is the val split); `--out` writes
JSON.

Keras 3's RMSprop puts epsilon inside the square root (tf.keras 2's rule, not standalone
Keras 2.2's), so only rows whose optimizer does not depend on that rule compare exactly.
Keras comes with tensorflow (the same install as digitjax); this file sets
KERAS_BACKEND=jax before importing it unless --backend (or KERAS_BACKEND) says otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from experiments import whole

os.environ.setdefault("KERAS_BACKEND", "jax")


def _a1(keras, num_classes, m):
  """A1: 784 -> D 10 sigmoid; categorical cross-entropy then normalises the sigmoids."""
  L = keras.layers
  return keras.Sequential([keras.Input((28, 28, 1)), L.Flatten(),
                           L.Dense(num_classes, activation="sigmoid")])


def _b3(keras, num_classes, m):
  """B3: Conv 32 3x3 (relu) -> MP 2 -> D 10 softmax, as Keras code writes it."""
  L = keras.layers
  return keras.Sequential([keras.Input((28, 28, 1)), L.Conv2D(32, 3, activation="relu"),
                           L.MaxPooling2D(2), L.Flatten(),
                           L.Dense(num_classes, activation="softmax")])


def _b5(keras, num_classes, m):
  """B5: Conv 16 3x3 / 32 2x2 / 64 1x1, 'same', each + MP 2 -> D 128 -> Drop -> D 10;
  the dropout rate is the config's (the report does not give it)."""
  L = keras.layers
  layers = [keras.Input((28, 28, 1))]
  for filters, k in ((16, 3), (32, 2), (64, 1)):
    layers += [L.Conv2D(filters, k, padding="same", activation="relu"), L.MaxPooling2D(2)]
  return keras.Sequential(layers + [L.Flatten(), L.Dense(128, activation="relu"),
                                    L.Dropout(m.dropout),
                                    L.Dense(num_classes, activation="softmax")])


def _b6(keras, num_classes, m):
  """B6, the flagship: GaussianNoise on the input (training only), then four Conv(relu,
  he_normal, kernel L2) -> BatchNormalization blocks with max-pooling and dropout rising
  0.20 -> 0.30 -> 0.35 -> 0.40 to a 5x5x64 map -> D 128 -> D 10 (digitjax.models.cnn_bn)."""
  L = keras.layers
  conv = lambda f, k: L.Conv2D(f, k, activation="relu", kernel_initializer="he_normal",
                               kernel_regularizer=keras.regularizers.l2(m.l2))
  return keras.Sequential([
      keras.Input((28, 28, 1)), L.GaussianNoise(m.noise_std),
      conv(16, 3), L.BatchNormalization(), L.Dropout(0.20),
      conv(32, 3), L.BatchNormalization(), L.MaxPooling2D(2), L.Dropout(0.30),
      conv(64, 3), L.BatchNormalization(), L.MaxPooling2D(2), L.Dropout(0.35),
      conv(64, 1), L.BatchNormalization(), L.Dropout(0.40),
      L.Flatten(), L.Dense(128, activation="relu"),
      L.Dense(num_classes, activation="softmax")])


def _c2(keras, num_classes, m):
  """C2: Conv 32 3x3 (relu) -> MP 2 -> Drop .25 -> Flatten -> D 10 softmax."""
  L = keras.layers
  return keras.Sequential([keras.Input((28, 28, 1)), L.Conv2D(32, 3, activation="relu"),
                           L.MaxPooling2D(2), L.Dropout(0.25), L.Flatten(),
                           L.Dense(num_classes, activation="softmax")])


def _d1(keras, num_classes, m):
  """D1 (net1): Conv 32 3x3 -> Conv 64 3x3 -> MP 2 -> D 128 -> D 10, relu, Keras's default
  glorot-uniform kernels: 1,199,882 parameters on MNIST."""
  L = keras.layers
  return keras.Sequential([keras.Input((28, 28, 1)), L.Conv2D(32, 3, activation="relu"),
                           L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(2),
                           L.Flatten(), L.Dense(128, activation="relu"),
                           L.Dense(num_classes, activation="softmax")])


def _e6(step):
  """E6.0-E6.4, the flowers ladder as the authors' notebooks write it (`v7` of
  experiments/keras/models.py): the model rescales raw [0, 255] pixels itself and ends in
  logits (from_logits=True)."""
  def build(keras, num_classes, m):
    from experiments.keras import models
    return models.v7(step, m.image_size, num_classes)
  return build


# Row -> (keras, num_classes, model) -> the row's model as Keras code builds it; `model` is
# config.model with the config's noise level as model.noise_std (Keras adds the noise with
# a layer, digitjax in its augmentation) and the dataset's image size as model.image_size.
KERAS_MODELS = {"A1": _a1, "B3": _b3, "B5": _b5, "B6": _b6, "C2": _c2, "D1-30": _d1,
                **{f"E6.{step}": _e6(step) for step in range(5)}}
# Rows whose Keras model takes raw [0, 255] pixels (a Rescaling layer inside) and gives
# logits; the others take [0, 1] images and end in a softmax (or A1's sigmoid).
RAW_PIXEL_LOGIT_ROWS = frozenset(f"E6.{step}" for step in range(5))


def _optimizer(keras, config):
  from digitjax import optim

  lr, o = optim.learning_rate(config), config.optimizer
  makers = {
      "sgd": lambda: keras.optimizers.SGD(lr, momentum=o.momentum),
      "momentum": lambda: keras.optimizers.SGD(lr, momentum=o.momentum or 0.9),
      "nesterov": lambda: keras.optimizers.SGD(lr, momentum=o.momentum or 0.9, nesterov=True),
      "rmsprop": lambda: keras.optimizers.RMSprop(lr, epsilon=o.epsilon),
      "adam": lambda: keras.optimizers.Adam(lr, o.beta_1, o.beta_2, epsilon=o.epsilon),
      "adadelta": lambda: keras.optimizers.Adadelta(lr, epsilon=o.epsilon),
      "adagrad": lambda: keras.optimizers.Adagrad(lr, epsilon=o.epsilon),
  }
  return makers[o.name]()


def load_row(row_id: str, limit: int = 0, validation_split: str | None = None):
  """(row, config, ((x, y), (x_val, y_val), (x_test, y_test))): digitjax's splits of the
  row's dataset, images as float32 in [0, 1] as Keras code scales them (in [0, 255] for
  RAW_PIXEL_LOGIT_ROWS, whose models rescale them)."""
  import numpy as np

  from digitjax import data
  from experiments.reproduce import catalogue

  (row,) = catalogue.rows("all", row_id)
  config = catalogue.load_config(row.config)
  with config.unlocked():
    if validation_split:
      config.dataset.validation_split = validation_split
    if limit:
      config.dataset.max_train_examples = limit
      config.dataset.max_test_examples = limit
  train, val = data.load_train_val(config)
  divisor = 1.0 if row.id in RAW_PIXEL_LOGIT_ROWS else 255.0
  scale = lambda s: (s.images.astype(np.float32) / divisor, s.labels)
  return row, config, (scale(train), scale(val), scale(data.load_test(config)))


def build_model(keras, row_id, config, num_classes):
  """The row's Keras model, its builder given config.model with the noise level and image
  size it also needs (KERAS_MODELS)."""
  spec = config.model.copy_and_resolve_references()
  with spec.unlocked():
    spec.noise_std = config.augment.noise_std
    spec.image_size = config.dataset.image_size
  return KERAS_MODELS[row_id](keras, num_classes, spec)


def train_row(row, config, splits, seed: int, epochs: int = 0) -> dict:
  """One Keras run of a row; figures are fractions, as Keras's history holds them."""
  import keras

  from digitjax import data

  (x, y), (xv, yv), (xt, yt) = splits
  num_classes = data.DATASETS[config.dataset.name].num_classes
  # One-hot labels and categorical_crossentropy, as the reports' Keras code had them (on a
  # sigmoid output, A1's, Keras normalises the outputs to sum to one before the log).
  y, yv, yt = (keras.utils.to_categorical(a, num_classes) for a in (y, yv, yt))
  keras.utils.set_random_seed(seed)
  model = build_model(keras, row.id, config, num_classes)
  loss = keras.losses.CategoricalCrossentropy(from_logits=row.id in RAW_PIXEL_LOGIT_ROWS)
  model.compile(optimizer=_optimizer(keras, config), loss=loss, metrics=["accuracy"])
  test_curve = []  # test accuracy after every epoch: what early stopping could have kept
  evaluate = lambda epoch, logs: test_curve.append(
      float(model.evaluate(xt, yt, batch_size=1000, verbose=0)[1]))
  callbacks = [keras.callbacks.LambdaCallback(on_epoch_end=evaluate)]
  if config.early_stopping.enabled:
    es = config.early_stopping
    callbacks.append(keras.callbacks.EarlyStopping(
        monitor=config.monitor, patience=es.patience, min_delta=es.min_delta,
        restore_best_weights=row.weights == "best"))
  if config.reduce_on_plateau.enabled:
    rp = config.reduce_on_plateau
    callbacks.append(keras.callbacks.ReduceLROnPlateau(
        monitor=config.monitor, factor=rp.factor, patience=rp.patience,
        min_delta=rp.min_delta, min_lr=rp.min_lr))
  start = time.time()
  history = model.fit(x, y, batch_size=config.batch_size, epochs=epochs or config.num_epochs,
                      validation_data=(xv, yv), shuffle=True, verbose=0, callbacks=callbacks)
  h = history.history
  test_accuracy = float(model.evaluate(xt, yt, batch_size=1000, verbose=0)[1])
  return dict(row=row.id, seed=seed, keras=keras.__version__, backend=keras.backend.backend(),
              params=int(sum(keras.ops.size(w) for w in model.trainable_weights)),
              final_lr=float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
              epochs=len(h["loss"]), train_accuracy=h["accuracy"][-1],
              val_accuracy=h["val_accuracy"][-1], best_val_accuracy=max(h["val_accuracy"]),
              test_accuracy=test_accuracy,
              best_test_accuracy=max(test_curve), test_curve=test_curve,
              train_examples=len(y), val_examples=len(yv), seconds=time.time() - start)


def _mean_std(values):
  return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main(argv=None):
  from digitjax.errors import UserError

  p = argparse.ArgumentParser(prog="python -m experiments.keras.check",
                              description=__doc__.split("\n")[0])
  p.add_argument("--row", required=True, help=f"one of {', '.join(KERAS_MODELS)}")
  p.add_argument("--seeds", type=whole(1), default=3)
  p.add_argument("--first-seed", type=whole(0), default=0)
  p.add_argument("--epochs", type=whole(0), default=0, help="0: the config's")
  p.add_argument("--limit", type=whole(0), default=0, help="at most this many train/test images")
  p.add_argument("--validation-split", default=None,
                 help="a TFDS split as the val set, e.g. test (report B's way for B1-B4)")
  p.add_argument("--backend", choices=("jax", "tensorflow"), default=None,
                 help="Keras backend (default: $KERAS_BACKEND, else jax). On this 2-core "
                 "CPU tensorflow ran D1's convolutions ~4x faster than jax")
  p.add_argument("--out", default="")
  args = p.parse_args(argv)
  if args.backend:  # keras is imported later, inside train_row
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != args.backend:
      print(f"error: Keras is already loaded on {sys.modules['keras'].backend.backend()}; "
            f"--backend {args.backend} needs a fresh process.", file=sys.stderr)
      return 2
    os.environ["KERAS_BACKEND"] = args.backend
  if args.row not in KERAS_MODELS:
    print(f"error: no Keras transcription of row {args.row!r}; rows: "
          f"{', '.join(KERAS_MODELS)} (add one to KERAS_MODELS).", file=sys.stderr)
    return 2
  try:
    row, config, splits = load_row(args.row, args.limit, args.validation_split)
  except UserError as e:  # missing data, an unknown split: one line, as digitjax.main says it
    print(f"error: {e}", file=sys.stderr)
    return 2
  if config.optimizer.name == "rmsprop" and not config.optimizer.eps_in_sqrt:
    print(f"note: {row.config} uses standalone Keras 2.2's RMSprop (epsilon outside the "
          "root); Keras 3 puts it inside: compare with digitjax's "
          "--config.optimizer.eps_in_sqrt=True.", flush=True)
  runs = []
  for seed in range(args.first_seed, args.first_seed + args.seeds):
    r = train_row(row, config, splits, seed, args.epochs)
    runs.append(r)
    print(f"{r['row']} seed {seed}: train {100 * r['train_accuracy']:.2f}%  val "
          f"{100 * r['val_accuracy']:.2f}% (best {100 * r['best_val_accuracy']:.2f}%)  "
          f"test {100 * r['test_accuracy']:.2f}%  best epoch's test {100 * r['best_test_accuracy']:.2f}%  ({r['epochs']} epochs, "
          f"{r['seconds']:.0f} s, Keras {r['keras']} on {r['backend']})", flush=True)
  for key in ("train_accuracy", "best_val_accuracy", "test_accuracy", "best_test_accuracy"):
    m, s = _mean_std([100 * r[key] for r in runs])
    print(f"{key}: {m:.2f} +- {s:.2f} ({len(runs)} seeds)")
  if args.out:
    with open(args.out, "w") as f:
      json.dump(dict(argv=vars(args), runs=runs), f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
