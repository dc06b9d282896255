"""Report E's networks built in Keras 3, as the report and the authors' notebooks built them.

  python -m experiments.keras.models     # prints each one's parameter count

Builds, with Keras 3, the Keras models that digitjax's report-E families transcribe
(keras.applications.VGG16; the hand-written VGG16, AlexNet and GoogLeNet of Keras
tutorials; the flowers CNNs) and prints `model.count_params()` for each. The numbers are
hard-coded in tests/test_models.py; rerun this when a layout changes. Building costs no
training, only the weights' memory (VGG16: ~0.5 GB). tests/test_keras_equivalence.py
imports the builders (classifier_activation=None gives logits, as keras.applications'
argument of that name) and checks digitjax against them number for number;
experiments/keras/check.py trains the E6 ladder's in Keras.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
from keras import layers as kl


def vgg16_hand(size, classes=5, classifier_activation="softmax"):
  """E3, as the authors' VGG16 notebooks write it (raw pixels to [-1, 1] first)."""
  m = keras.Sequential([keras.Input((size, size, 3)), kl.Rescaling(1 / 127.5, offset=-1)])
  for filters, n in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
    for _ in range(n):
      m.add(kl.Conv2D(filters, 3, padding="same", activation="relu"))
    m.add(kl.MaxPooling2D(2))
  m.add(kl.Flatten())
  m.add(kl.Dense(4096, activation="relu"))
  m.add(kl.Dense(4096, activation="relu"))
  m.add(kl.Dense(classes, activation=classifier_activation))
  return m


def alexnet(size, classes=5, classifier_activation="softmax"):
  """E2, as the authors' AlexNet notebook writes it ('same' convs there, the same as
  these ZeroPadding2D + 'valid' ones), raw pixels to [-1, 1] first."""
  return keras.Sequential([
      keras.Input((size, size, 3)), kl.Rescaling(1 / 127.5, offset=-1),
      kl.Conv2D(96, 11, strides=4, activation="relu"), kl.BatchNormalization(),
      kl.MaxPooling2D(3, strides=2),
      kl.ZeroPadding2D(2), kl.Conv2D(256, 5, activation="relu"), kl.BatchNormalization(),
      kl.MaxPooling2D(3, strides=2),
      kl.ZeroPadding2D(1), kl.Conv2D(384, 3, activation="relu"), kl.BatchNormalization(),
      kl.ZeroPadding2D(1), kl.Conv2D(384, 3, activation="relu"), kl.BatchNormalization(),
      kl.ZeroPadding2D(1), kl.Conv2D(256, 3, activation="relu"), kl.BatchNormalization(),
      kl.MaxPooling2D(3, strides=2), kl.Flatten(),
      kl.Dense(4096, activation="relu"), kl.Dropout(0.5),
      kl.Dense(4096, activation="relu"), kl.Dropout(0.5),
      kl.Dense(classes, activation=classifier_activation)])


def googlenet(size, classes=5, classifier_activation="softmax"):
  """The GoogLeNet report E took (KhuyenLE-maths/Implementation-of-GoogLeNet-on-Keras),
  three outputs [main, aux 1, aux 2], each Dense(classes) as the report changed them.

  Layers carry digitjax's parameter paths joined by "__" (inception_3a__conv_1x1,
  aux_1__03_dense) so that tests/test_keras_equivalence.py copies weights by name.
  """
  def conv(f, k, name, s=1, padding="same"):
    return kl.Conv2D(f, k, strides=s, padding=padding, activation="relu", name=name)

  def inception(x, name, f1, f3r, f3, f5r, f5, fp):
    n = lambda layer: f"{name}__{layer}"
    b1 = conv(f1, 1, n("conv_1x1"))(x)
    b3 = conv(f3, 3, n("conv_3x3"))(conv(f3r, 1, n("conv_3x3_reduce"))(x))
    b5 = conv(f5, 5, n("conv_5x5"))(conv(f5r, 1, n("conv_5x5_reduce"))(x))
    bp = conv(fp, 1, n("pool_proj"))(kl.MaxPooling2D(3, strides=1, padding="same")(x))
    return kl.concatenate([b1, b3, b5, bp], axis=-1)

  def aux(x, name):
    x = kl.AveragePooling2D(5, strides=3)(x)
    x = kl.Flatten()(conv(128, 1, f"{name}__01_conv")(x))
    x = kl.Dropout(0.7)(kl.Dense(1024, activation="relu", name=f"{name}__03_dense")(x))
    return kl.Dense(classes, activation=classifier_activation, name=f"{name}__05_dense")(x)

  inp = keras.Input((size, size, 3))
  x = conv(64, 7, "conv_1_7x7_2", s=2, padding="valid")(inp)
  x = kl.MaxPooling2D(3, strides=2)(x)
  x = conv(192, 3, "conv_2b_3x3_1")(conv(64, 1, "conv_2a_1x1_1")(x))
  x = kl.MaxPooling2D(3, strides=2)(x)
  x = inception(x, "inception_3a", 64, 96, 128, 16, 32, 32)
  x = inception(x, "inception_3b", 128, 128, 192, 32, 96, 64)
  x = kl.MaxPooling2D(3, strides=2)(x)
  x = inception(x, "inception_4a", 192, 96, 208, 16, 48, 64)
  a1 = aux(x, "aux_1")
  x = inception(x, "inception_4b", 160, 112, 224, 24, 64, 64)
  x = inception(x, "inception_4c", 128, 128, 256, 24, 64, 64)
  x = inception(x, "inception_4d", 112, 144, 288, 32, 64, 64)
  a2 = aux(x, "aux_2")
  x = inception(x, "inception_4e", 256, 160, 320, 32, 128, 128)
  x = kl.MaxPooling2D(3, strides=2)(x)
  x = inception(x, "inception_5a", 256, 160, 320, 32, 128, 128)
  x = inception(x, "inception_5b", 384, 192, 384, 48, 128, 128)
  x = kl.Dropout(0.4)(kl.GlobalAveragePooling2D()(x))
  out = kl.Dense(classes, activation=classifier_activation, name="output")(x)
  return keras.Model(inp, [out, a1, a2])


def flowers(size, filters, kernels, hidden, classes=5):
  """E1: the TensorFlow flowers tutorial's CNN."""
  m = keras.Sequential([keras.Input((size, size, 3)), kl.Rescaling(1 / 255)])
  for f, k in zip(filters, kernels):
    m.add(kl.Conv2D(f, k, padding="same", activation="relu"))
    m.add(kl.MaxPooling2D())
  m.add(kl.Flatten())
  for h in hidden:
    m.add(kl.Dense(h, activation="relu"))
  m.add(kl.Dense(classes))
  return m


def v7(step, size=150, classes=5):
  """E6: the v7 ladder as the authors' notebooks Version_7_Ejecucion_base (step 0) and
  V7_Mejora_1 ... _5 write it. Steps 4 and 5 share the model; step 5's extra 1/255 is
  its ImageDataGenerator's, outside the model."""
  def conv(f, k, pool=2, strides=None, bn=False, drop=0.0):
    block = [kl.Conv2D(f, k, activation="relu")] + ([kl.BatchNormalization()] if bn else [])
    block.append(kl.MaxPooling2D(pool, strides=strides))
    return block + ([kl.Dropout(drop)] if drop else [])

  scale = (kl.Rescaling(1 / 127.5, offset=-1) if step < 3 else kl.Rescaling(1 / 255))
  dense = [kl.Flatten(), kl.Dense(128, activation="relu"), kl.Dropout(0.5)]
  blocks = {
      0: conv(32, 3) + conv(64, 3) + conv(128, 3) + dense,
      1: conv(32, 3) + conv(64, 3) + conv(128, 5) + conv(128, 3) + dense,
      2: (conv(32, 3, drop=.5) + conv(64, 3, drop=.5) + conv(96, 3, drop=.5)
          + conv(96, 3, drop=.2) + [kl.GlobalAveragePooling2D()]),
      3: (conv(32, 3, drop=.5) + conv(64, 3, drop=.5) + conv(96, 3, drop=.5)
          + conv(128, 5, drop=.2) + [kl.GlobalAveragePooling2D()]),
      4: (conv(32, 3, 3, 2, bn=True) + conv(64, 3, 2, 2, bn=True) + conv(128, 5, 2, 2, bn=True)
          + conv(128, 3, 2, 2, bn=True) + [kl.GlobalAveragePooling2D()]),
  }[min(step, 4)]
  return keras.Sequential([keras.Input((size, size, 3)), scale, *blocks, kl.Dense(classes)])


MODELS = {
    "vgg16_app 224": lambda: keras.applications.VGG16(weights=None, classes=5),
    "vgg16 150": lambda: vgg16_hand(150),
    "alexnet 150": lambda: alexnet(150),
    "googlenet 150": lambda: googlenet(150),
    "googlenet 224": lambda: googlenet(224),
    "flowers E1 v1 150": lambda: flowers(150, (16, 32, 64), (3, 3, 3), (128,)),
    **{f"flowers E6.{step} 150": (lambda step=step: v7(step)) for step in range(5)},
}

if __name__ == "__main__":
  for name, make in MODELS.items():
    m = make()
    trainable = sum(int(w.numpy().size) if hasattr(w, "numpy") else int(w.size)
                    for w in m.trainable_weights)
    print(f"{name}: total {m.count_params():,}, trainable {trainable:,}", flush=True)
    del m
    keras.backend.clear_session()
