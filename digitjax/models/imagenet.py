"""The ImageNet architectures report E trains from scratch on flowers (E2-E5).

Written to read like the Keras code they come from. Where the report names a layout
without listing it, each docstring says which well-known Keras version was taken and why.
Parameter counts equal Keras's for the same layers (tests/test_models.py; reference
numbers from experiments/keras/models.py, which builds the Keras models).
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from digitjax.models.layers import (INPUT_FIELDS, Conv, Dense, Dropout, GlobalAvgPool,
                                    MaxPool, Rescaling, Sequential, check_input_fields,
                                    input_rescaling, rescales)

# alexnet's, vgg16's and vgg16_app's own config.model fields: the input's scale and
# offset. The authors' notebooks feed AlexNet and VGG16 Rescaling(1/127.5, offset=-1)
# (input_scale 2, offset -1 on digitjax's [0, 1] images), keras.applications' VGG16 raw
# [0, 255] pixels (input_scale 255); configs/report_e.py sets them.
ALEXNET_FIELDS = VGG16_FIELDS = VGG16_APP_FIELDS = INPUT_FIELDS


def alexnet(m, num_classes, impl):
  """E2: AlexNet as Keras tutorials write it, with BatchNormalization and ZeroPadding2D.

  The report names three features: a strided first conv, BN and zero padding. Read as
  the common Keras port of Krizhevsky et al. (2012), BN in place of LRN, after each
  conv (Conv(relu) -> BN, as in report B):
    Conv 96 11x11/4 -> BN -> MP 3/2 -> ZeroPad 2 -> Conv 256 5x5 -> BN -> MP 3/2
    -> ZeroPad 1 -> Conv 384 3x3 -> BN -> ZeroPad 1 -> Conv 384 3x3 -> BN
    -> ZeroPad 1 -> Conv 256 3x3 -> BN -> MP 3/2 -> Flatten
    -> D 4096 -> Drop .5 -> D 4096 -> Drop .5 -> D classes.
  At 150x150 the maps run 35 -> 17 -> 17 -> 8 -> 8 -> 3 (3x3x256 into the dense layers).
  model.input_scale / input_offset: the authors' Rescaling(1/127.5, offset=-1) (E2's
  configs set it).
  """
  conv = lambda f, k, s=1: ("Conv", dict(features=f, kernel_size=k, strides=s, impl=impl))
  bn, pool = ("BatchNorm", {}), ("MaxPool", dict(pool_size=3, strides=2))
  pad = lambda p: ("ZeroPad", dict(padding=p))
  return [*input_rescaling(m),
          conv(96, 11, 4), bn, pool,
          pad(2), conv(256, 5), bn, pool,
          pad(1), conv(384, 3), bn,
          pad(1), conv(384, 3), bn,
          pad(1), conv(256, 3), bn, pool,
          ("Flatten", {}),
          ("Dense", dict(features=4096)), ("Dropout", dict(rate=0.5)),
          ("Dense", dict(features=4096)), ("Dropout", dict(rate=0.5)),
          ("Dense", dict(features=num_classes, activation=None))]


VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (filters, convs)


def vgg16(m, num_classes, impl):
  """E3: VGG16 written by hand, from scratch, at report E's 150x150.

  The hand-written VGG16 of Keras tutorials (Simonyan & Zisserman's configuration D):
  five blocks of 3x3 'same' convs (64x2, 128x2, 256x3, 512x3, 512x3), each closed by
  MP 2, then Flatten -> D 4096 -> D 4096 -> D classes, no dropout. The layers are those
  of keras.applications.VGG16 (E4); what differs is the input, 150x150 (a 4x4x512 map,
  65,075,013 params) against E4's 224x224. model.input_scale / input_offset: the
  authors' Rescaling(1/127.5, offset=-1) (E3's configs set it).
  """
  layers = input_rescaling(m)
  for filters, n in VGG16_BLOCKS:
    layers += [("Conv", dict(features=filters, kernel_size=3, padding="same", impl=impl))
               for _ in range(n)]
    layers.append(("MaxPool", dict(pool_size=2)))
  return layers + [("Flatten", {}), ("Dense", dict(features=4096)),
                   ("Dense", dict(features=4096)),
                   ("Dense", dict(features=num_classes, activation=None))]


def vgg16_app(m, num_classes, impl):
  """E4: exactly keras.applications.VGG16(include_top=True, weights=None, classes=5).

  Same layer names as Keras (block1_conv1 ... block5_pool, flatten, fc1, fc2,
  predictions) so the summary reads like Keras's; at 224x224x3 with 5 classes Keras
  reports 134,281,029 parameters, and so does this. model.input_scale / input_offset:
  the authors fed it raw [0, 255] pixels, no Rescaling (E4's configs set scale 255).
  """
  layers = input_rescaling(m)
  for b, (filters, n) in enumerate(VGG16_BLOCKS, start=1):
    layers += [("Conv", dict(features=filters, kernel_size=3, padding="same", impl=impl,
                             name=f"block{b}_conv{i}")) for i in range(1, n + 1)]
    layers.append(("MaxPool", dict(pool_size=2, name=f"block{b}_pool")))
  return layers + [("Flatten", dict(name="flatten")),
                   ("Dense", dict(features=4096, name="fc1")),
                   ("Dense", dict(features=4096, name="fc2")),
                   ("Dense", dict(features=num_classes, activation=None, name="predictions"))]


class Inception(nn.Module):
  """An Inception (v1) module: 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | MP 3/1 -> 1x1, concatenated."""
  f1: int
  f3_reduce: int
  f3: int
  f5_reduce: int
  f5: int
  pool_proj: int
  impl: str = "matmul"

  @nn.compact
  def __call__(self, x, train: bool = False):
    conv = lambda f, k, name: Conv(f, k, padding="same", impl=self.impl, name=name)
    b1 = conv(self.f1, 1, "conv_1x1")(x)
    b3 = conv(self.f3, 3, "conv_3x3")(conv(self.f3_reduce, 1, "conv_3x3_reduce")(x))
    b5 = conv(self.f5, 5, "conv_5x5")(conv(self.f5_reduce, 1, "conv_5x5_reduce")(x))
    bp = conv(self.pool_proj, 1, "pool_proj")(
        MaxPool(3, strides=1, padding="same", name="pool")(x))
    return jnp.concatenate([b1, b3, b5, bp], axis=-1)


def _aux_head(num_classes, impl, name):
  """AvgPool 5/3 -> Conv 128 1x1 -> Flatten -> D 1024 -> Drop .7 -> D classes."""
  return Sequential(layers=(
      ("AvgPool", dict(pool_size=5, strides=3)),
      ("Conv", dict(features=128, kernel_size=1, padding="same", impl=impl)),
      ("Flatten", {}),
      ("Dense", dict(features=1024)),
      ("Dropout", dict(rate=0.7)),
      ("Dense", dict(features=num_classes, activation=None))), name=name)


class GoogLeNet(nn.Module):
  """E5: GoogLeNet / Inception v1 (Szegedy et al. 2014) with its two auxiliary heads.

  The report names its source: "La implementación de esta red [...] fue sacada del
  siguiente enlace: https://github.com/KhuyenLE-maths/Implementation-of-GoogLeNet-on-Keras"
  (its training log shows the three softmax outputs as unnamed dense layers, "dense_26,
  dense_28, dense_29", as in that notebook). Its layout, layer for layer: Conv 64 7x7/2
  'valid' -> MP 3/2 'valid' -> Conv 64 1x1 'same' -> Conv 192 3x3 'same' -> MP 3/2
  'valid' -> inception 3a, 3b -> MP 3/2 'valid' -> 4a -> [aux 1] -> 4b, 4c, 4d ->
  [aux 2] -> 4e -> MP 3/2 'valid' -> 5a, 5b -> GAP -> Drop .4 -> D classes; inception
  convs 'same', their pool branch MP 3/1 'same'; Keras's default initialisers (glorot
  kernels, zero biases); no LocalResponseNormalization. Each auxiliary head is AvgPool
  5/3 'valid' -> Conv 128 1x1 -> Flatten -> D 1024 -> Drop .7 -> D classes. (The
  Analytics Vidhya variant, 'same' stem pools and bias 0.2, has the same parameters at
  150x150 but other maps: 4a 10x10 there, 8x8 here.)

  The auxiliary heads' logits are sown into the 'aux' collection in training only; the
  train step adds their loss with weight `aux_weight` (config.model.aux_weight: 0.3 by
  default, the paper's; report E's authors compiled the three outputs with one loss, so
  Keras weighed each 1.0, and E5's configs say so) and evaluation uses the main head
  alone. Their parameters exist (and count) always, as in the Keras model, which has
  three outputs. `input_scale` / `input_offset` rescale digitjax's [0, 1] images first
  (E5's authors fed raw [0, 255] pixels: scale 255).

  At E5's 224x224 (the authors' notebooks) the maps run 109 -> 54 -> 26 -> 12 (4a:
  12x12x512, each auxiliary AvgPool 5/3 leaves 3x3x128) -> 5 (5b); at 150x150, 72 -> 35
  -> 17 -> 8 (2x2x128) -> 3; the smallest input the auxiliary heads accept is 99x99 (4a
  5x5).
  """
  num_classes: int
  impl: str = "matmul"
  aux_weight: float = 0.3  # the weight of the auxiliary heads' losses (the train step's)
  input_scale: float = 1.0
  input_offset: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool = False):
    if rescales(self):
      x = Rescaling(self.input_scale, self.input_offset, name="rescaling")(x)
    conv = lambda f, k, s, padding, name: Conv(f, k, strides=s, padding=padding,
                                               impl=self.impl, name=name)
    pool = lambda name: MaxPool(3, strides=2, name=name)
    inception = lambda name, *f: Inception(*f, impl=self.impl, name=name)
    aux = train or self.is_initializing()  # build the aux heads' parameters always

    x = conv(64, 7, 2, "valid", "conv_1_7x7_2")(x)
    x = pool("max_pool_1_3x3_2")(x)
    x = conv(64, 1, 1, "same", "conv_2a_1x1_1")(x)
    x = conv(192, 3, 1, "same", "conv_2b_3x3_1")(x)
    x = pool("max_pool_2_3x3_2")(x)
    x = inception("inception_3a", 64, 96, 128, 16, 32, 32)(x)
    x = inception("inception_3b", 128, 128, 192, 32, 96, 64)(x)
    x = pool("max_pool_3_3x3_2")(x)
    x = inception("inception_4a", 192, 96, 208, 16, 48, 64)(x)
    if aux:
      self._sow_aux(_aux_head(self.num_classes, self.impl, "aux_1")(x, train=train), train)
    x = inception("inception_4b", 160, 112, 224, 24, 64, 64)(x)
    x = inception("inception_4c", 128, 128, 256, 24, 64, 64)(x)
    x = inception("inception_4d", 112, 144, 288, 32, 64, 64)(x)
    if aux:
      self._sow_aux(_aux_head(self.num_classes, self.impl, "aux_2")(x, train=train), train)
    x = inception("inception_4e", 256, 160, 320, 32, 128, 128)(x)
    x = pool("max_pool_4_3x3_2")(x)
    x = inception("inception_5a", 256, 160, 320, 32, 128, 128)(x)
    x = inception("inception_5b", 384, 192, 384, 48, 128, 128)(x)
    x = GlobalAvgPool(name="avg_pool_5")(x)
    x = Dropout(0.4, name="dropout")(x, train=train)
    return Dense(self.num_classes, activation=None, name="output")(x)

  def _sow_aux(self, logits, train):
    if train:
      self.sow("aux", "logits", logits)


# GoogLeNet's own config.model fields: the weight of the auxiliary heads' losses in
# training (0.3, the paper's), and the input's scale and offset.
GOOGLENET_FIELDS = dict(aux_weight=0.3, **INPUT_FIELDS)


def googlenet(m, num_classes, impl):
  """E5: see GoogLeNet. A module rather than layer specs: it branches."""
  return GoogLeNet(num_classes=num_classes, impl=impl, aux_weight=m.aux_weight,
                   input_scale=m.input_scale, input_offset=m.input_offset)


def check_googlenet(check, m) -> None:
  """config.validate's checks of GoogLeNet's own fields."""
  check.in_range("model.aux_weight", m.aux_weight, 0, float("inf"))
  check_input_fields(check, m)
