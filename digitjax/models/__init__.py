"""Model families of the reports, chosen by `config.model.name`: the registry FAMILIES.

A family brings everything the rest of digitjax knows about it (`Family`): its build
function (model settings, num_classes, conv impl) -> layer specs for `Sequential`,
written to read like the report's Keras code (a family that branches, GoogLeNet, returns
its Flax module instead); its own config.model fields at their defaults; and the checks
of those fields. The final Dense layer emits logits; `config.model.output_activation`
tells the loss whether they stand for a softmax or per-class sigmoids. Reports A-D's
families are here; report E's in flowers.py and imagenet.py.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from digitjax.models import flowers, imagenet
from digitjax.models.flowers import flowers_cnn
from digitjax.models.imagenet import alexnet, googlenet, vgg16, vgg16_app
from digitjax.models.inits import INITS, initialize  # noqa: F401 (config.model.init)
from digitjax.models.layers import (ACTIVATIONS, CONV_IMPLS, INPUT_FIELDS, PADDINGS,
                                    Sequential, check_input_fields, input_rescaling)


def _mlp_head(m, num_classes):
  """Flatten -> [Dense h (-> Dropout)]* -> Dense num_classes, shared by the MLP families."""
  layers = [("Flatten", {})]
  for h in m.hidden_units:
    layers.append(("Dense", dict(features=h, activation=m.hidden_activation, l2=m.l2)))
    if m.dropout:
      layers.append(("Dropout", dict(rate=m.dropout)))
  layers.append(("Dense", dict(features=num_classes, activation=None, l2=m.l2)))
  return layers


def perceptron(m, num_classes, impl):
  """A1: 784 -> Dense 10 (sigmoid output via config.model.output_activation)."""
  return [("Flatten", {}), ("Dense", dict(features=num_classes, activation=None, l2=m.l2))]


def mlp(m, num_classes, impl):
  """A2-A5, B1, C1: Dense layers of config.model.hidden_units, optional dropout and L2."""
  return _mlp_head(m, num_classes)


def _conv(features, k, impl, **kw):
  return ("Conv", dict(features=features, kernel_size=k, impl=impl, **kw))


def _dense(features, activation="relu"):
  return ("Dense", dict(features=features, activation=activation))


def _drop(rate):
  return ("Dropout", dict(rate=rate))


def keras_cnn(m, num_classes, impl):
  """B2 (and D1 net1 without dropout): the Keras examples' MNIST CNN."""
  return [_conv(32, 3, impl), _conv(64, 3, impl), ("MaxPool", dict(pool_size=2)),
          _drop(0.25), ("Flatten", {}), _dense(128), _drop(0.5),
          _dense(num_classes, None)]


def net1(m, num_classes, impl):
  """D1: Conv 32 3x3 -> Conv 64 3x3 -> MP 2 -> D 128 -> D 10 (1,199,882 params on MNIST)."""
  return [_conv(32, 3, impl), _conv(64, 3, impl), ("MaxPool", dict(pool_size=2)),
          ("Flatten", {}), _dense(128), _dense(num_classes, None)]


def net2(m, num_classes, impl):
  """D2: as D1 without pooling, second conv stride 2 (12x12x64 map, 1,199,882 params)."""
  return [_conv(32, 3, impl), _conv(64, 3, impl, strides=2), ("Flatten", {}), _dense(128),
          _dense(num_classes, None)]


def cnn_single(m, num_classes, impl):
  """B3: Conv 32 3x3 -> MP 2 -> D 10."""
  return [_conv(32, 3, impl), ("MaxPool", dict(pool_size=2)), ("Flatten", {}),
          _dense(num_classes, None)]


# cnn3_v1's own config.model fields: Keras `padding` of its three convs and of its
# max-poolings, Keras's defaults.
CNN3_V1_FIELDS = dict(conv_paddings=("valid", "valid", "valid"), pool_padding="valid")


def check_cnn3_v1(check, m) -> None:
  """config.validate's checks of cnn3_v1's own fields (check: its collector)."""
  check.one_of("model.pool_padding", m.pool_padding, PADDINGS)
  paddings = m.conv_paddings
  if (not isinstance(paddings, (tuple, list)) or len(paddings) != 3
      or not all(p in PADDINGS for p in paddings)):
    check.errors.append(f"config.model.conv_paddings={paddings!r} must be three of "
                        f"{', '.join(PADDINGS)}, one per conv of cnn3_v1, e.g. "
                        "--config.model.conv_paddings=\"('same','valid','valid')\".")


def cnn3_v1(m, num_classes, impl):
  """B4: three (Conv 3x3 -> MP 2) blocks of 32, 32, 64 filters -> D 128 -> D 10.

  Paddings come from model.conv_paddings and model.pool_padding (Keras's `padding`).
  Keras's defaults everywhere ('valid') shrink 28 -> 26 -> 13 -> 11 -> 5 -> 3 -> 1, a
  1x1 map; the report's map before the dense layers is 2x2, which one 'same' conv or
  'same' pooling gives. configs/report_b.py says which reading B4 takes.
  """
  layers = []
  for f, padding in zip((32, 32, 64), m.conv_paddings):
    layers += [_conv(f, 3, impl, padding=padding),
               ("MaxPool", dict(pool_size=2, padding=m.pool_padding))]
  return layers + [("Flatten", {}), _dense(128), _dense(num_classes, None)]


def cnn3_v2(m, num_classes, impl):
  """B5: Conv 16 3x3 / 32 2x2 / 64 1x1, all 'same', each + MP 2 -> 3x3 map -> D 128."""
  layers = []
  for f, k in ((16, 3), (32, 2), (64, 1)):
    layers += [_conv(f, k, impl, padding="same"), ("MaxPool", dict(pool_size=2))]
  return layers + [("Flatten", {}), _dense(128), _drop(m.dropout or 0.5),
                   _dense(num_classes, None)]


def cnn_bn(m, num_classes, impl):
  """B6, the flagship: four Conv(relu) -> BatchNorm blocks, rising dropout, 5x5 map.

  Read from the report's text: Conv 16 3x3 -> BN -> Drop .20 -> Conv 32 3x3 -> BN -> MP 2
  -> Drop .30 -> Conv 64 3x3 -> BN -> MP 2 -> Drop .35 -> Conv 64 1x1 -> BN -> Drop .40
  -> D 128 -> D 10. Maps: 26 -> 24 -> 12 -> 10 -> 5 -> 5 (the published 5x5), and
  234,026 trainable parameters, the report's count. Conv kernels: he_normal, L2 model.l2.
  """
  conv = lambda f, k: _conv(f, k, impl, kernel_init="he_normal", l2=m.l2)
  bn = ("BatchNorm", {})
  pool = ("MaxPool", dict(pool_size=2))
  return [conv(16, 3), bn, _drop(0.20),
          conv(32, 3), bn, pool, _drop(0.30),
          conv(64, 3), bn, pool, _drop(0.35),
          conv(64, 1), bn, _drop(0.40),
          ("Flatten", {}), _dense(128), _dense(num_classes, None)]


def c_v2(m, num_classes, impl):
  """C2: Conv 32 3x3 -> MP 2 -> Drop 0.25 -> D 10."""
  return [_conv(32, 3, impl), ("MaxPool", dict(pool_size=2)), _drop(0.25), ("Flatten", {}),
          _dense(num_classes, None)]


def c_v3(m, num_classes, impl):
  """C3: Conv 32 4x4 -> Conv 64 3x3 -> MP 2 -> Drop .2 -> D 248 -> D 124 -> Drop .4 -> D 10."""
  return [_conv(32, 4, impl), _conv(64, 3, impl), ("MaxPool", dict(pool_size=2)), _drop(0.2),
          ("Flatten", {}), _dense(248), _dense(124), _drop(0.4), _dense(num_classes, None)]


def speedrun_cnn(m, num_classes, impl):
  """configs/speedrun_mnist.py (tuomaso/train_mnist_fast's net): [Rescaling] -> Conv 24
  5x5 -> MP 2 -> ReLU -> Conv 32 3x3 -> MP 2 -> ReLU -> D 256 -> D 10, 5x5x32 map,
  215,194 parameters. model.input_scale / input_offset normalise the [0, 1] pixels (the
  config: MNIST's mean and std); model.init = "torch" draws PyTorch's initial parameters."""
  relu = ("Activation", dict(activation="relu"))
  pool = ("MaxPool", dict(pool_size=2))
  return [*input_rescaling(m), _conv(24, 5, impl, activation=None), pool, relu,
          _conv(32, 3, impl, activation=None), pool, relu,
          ("Flatten", {}), _dense(256), _dense(num_classes, None)]


@dataclasses.dataclass(frozen=True)
class Family:
  """A model family: its build function, its own config.model fields (with their
  defaults; every family also reads the shared ones, digitjax.config's model group) and
  check(checks, m), the checks of those fields for config.validate."""
  build: Callable
  fields: dict = dataclasses.field(default_factory=dict)
  check: Callable | None = None


FAMILIES = {f.build.__name__: f for f in (
    Family(perceptron), Family(mlp), Family(keras_cnn), Family(net1), Family(net2),
    Family(cnn_single), Family(cnn3_v1, CNN3_V1_FIELDS, check_cnn3_v1), Family(cnn3_v2),
    Family(cnn_bn), Family(c_v2), Family(c_v3),
    Family(speedrun_cnn, INPUT_FIELDS, check_input_fields),
    Family(flowers_cnn, flowers.FIELDS, flowers.check),
    Family(alexnet, imagenet.ALEXNET_FIELDS, check_input_fields),
    Family(vgg16, imagenet.VGG16_FIELDS, check_input_fields),
    Family(vgg16_app, imagenet.VGG16_APP_FIELDS, check_input_fields),
    Family(googlenet, imagenet.GOOGLENET_FIELDS, imagenet.check_googlenet))}


def own_fields(name: str) -> dict:
  """A family's own config.model fields at their defaults ({} for an unknown name)."""
  family = FAMILIES.get(name)
  return dict(family.fields) if family else {}


def settings(m) -> ml_collections.ConfigDict:
  """config.model with its family's own fields at their defaults where it leaves them out
  (as after --config.model.name=flowers_cnn on another family's config)."""
  return ml_collections.ConfigDict({**own_fields(m.name), **m.to_dict()})


def build(config, num_classes: int, bn_axis_name: str | None = None) -> nn.Module:
  """The Flax module for config.model; bn_axis_name syncs BatchNorm across devices."""
  m = settings(config.model)
  layers = FAMILIES[m.name].build(m, num_classes, m.conv_impl)
  if isinstance(layers, nn.Module):  # a branching family (GoogLeNet: no BatchNorm)
    return layers
  if bn_axis_name:
    layers = [(k, dict(kw, axis_name=bn_axis_name) if k == "BatchNorm" else kw)
              for k, kw in layers]
  return Sequential(layers=tuple(layers), name=None)


def check_input(config, input_shape, num_classes) -> None:
  """Raises UserError when config.model cannot take images of input_shape."""
  from digitjax.errors import UserError

  try:
    summary(build(config, num_classes), input_shape, config.model.name)
  except Exception as e:  # shape errors surface as TypeError/ValueError from lax
    raise UserError(
        f"model {config.model.name!r} cannot take {config.dataset.name} images of shape "
        f"{tuple(input_shape)}: {str(e).splitlines()[0][:200]}. Choose another model or "
        "set --config.dataset.image_size.") from e


def summary(model, input_shape, title: str = "model") -> tuple[str, dict]:
  """A keras.Model.summary()-style table and its totals, computed without any FLOPs.

  One row per top-level submodule: every layer of a Sequential model, the blocks of a
  branching one (GoogLeNet's inception modules and auxiliary heads). The forward pass
  traced is the training one, so layers used in training only (auxiliary heads) are
  listed too. Non-trainable parameters are BatchNorm's moving mean and variance, as in
  Keras.
  """
  x = jnp.zeros((1, *input_shape), jnp.float32)
  rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
  variables = jax.eval_shape(lambda: model.init(rngs, x, train=False))
  order = []  # top-level submodules in call order (pytrees come back with sorted keys)

  def record(next_fun, args, kwargs, context):
    path = context.module.path
    if context.method_name == "__call__" and len(path) == 1 and path[0] not in order:
      order.append(path[0])
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    _, state = jax.eval_shape(
        lambda v: model.apply(v, x, train=True, capture_intermediates=True, rngs=rngs,
                              mutable=["intermediates", "losses", "batch_stats", "aux"]),
        variables)
  count = lambda tree: int(sum(np.prod(l.shape) for l in jax.tree.leaves(tree)))
  params = variables.get("params", {})
  stats = variables.get("batch_stats", {})
  rows = []
  for name in order:
    shape = state["intermediates"][name]["__call__"][0].shape
    if 0 in shape:
      raise ValueError(f"layer {name} produces an empty output {shape}")
    rows.append((name, "(None, " + ", ".join(map(str, shape[1:])) + ")",
                 count(params.get(name, {})) + count(stats.get(name, {}))))
  trainable, non_trainable = count(params), count(stats)
  w = (max(len(r[0]) for r in rows) + 2, max(len(r[1]) for r in rows) + 2, 12)
  line = "-" * sum(w)
  text = [f'Model: "{title}"', line,
          "Layer".ljust(w[0]) + "Output Shape".ljust(w[1]) + "Param #".rjust(w[2]), line]
  text += [n.ljust(w[0]) + s.ljust(w[1]) + f"{p:,}".rjust(w[2]) for n, s, p in rows]
  text += [line, f"Total params: {trainable + non_trainable:,}",
           f"Trainable params: {trainable:,}", f"Non-trainable params: {non_trainable:,}"]
  totals = dict(total=trainable + non_trainable, trainable=trainable,
                non_trainable=non_trainable)
  return "\n".join(text), totals
