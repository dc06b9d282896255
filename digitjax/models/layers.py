"""The Keras layers the reports use, as small Flax linen modules.

Each layer is its own module so that `summary()` can list it with its output shape and
parameter count, exactly like `keras.Model.summary()`. Defaults follow Keras: glorot-uniform
kernels, zero biases, BatchNormalization(momentum=0.99, epsilon=1e-3).

A kernel L2 factor makes a layer `sow` `l2 * sum(kernel**2)` into the 'losses'
collection; the train step adds that collection to the loss, as Keras adds `model.losses`.

Conv has three implementations with the same parameters and the same numbers up to
float rounding:
- "xla": `lax.conv_general_dilated`.
- "matmul" (the default): the k*k shifted slices of the input concatenated on the channel
  axis, then one matmul with the reshaped kernel. On XLA:CPU this trains 2-3x faster
  than lax.conv, whose weight gradient is slow (experiments/BENCH.md).
- "mixed": lax.conv forward with its own backward (`conv_mixed`); fastest for the MNIST
  speedrun's scanned epoch, level with "matmul" on the flagship.

MaxPool and Dropout compute exactly what nn.max_pool and nn.Dropout compute (values,
gradients, dropout masks bit for bit) in forms XLA:CPU runs faster; see fast_ops.py for
why, and experiments/BENCH.md for the measured effect on whole train steps.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from digitjax.models import fast_ops

PADDINGS = ("valid", "same")  # Keras layers' padding argument

ACTIVATIONS: dict[str, Callable | None] = {
    "relu": nn.relu,
    "sigmoid": nn.sigmoid,
    "linear": None,
}
INITIALIZERS = {
    "glorot_uniform": nn.initializers.glorot_uniform,
    "he_normal": nn.initializers.he_normal,  # truncated normal, fan_in, scale 2: as Keras 3
}
def _activate(x, activation):
  fn = ACTIVATIONS[activation or "linear"]
  return x if fn is None else fn(x)


def _sow_l2(module: nn.Module, kernel, l2: float):
  if l2:
    module.sow("losses", "l2", l2 * jnp.sum(jnp.square(kernel)))


def _pair(v) -> tuple[int, int]:
  return (v, v) if isinstance(v, int) else tuple(v)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
  """TensorFlow/Keras 'same' padding: output ceil(size/stride), extra pixel at the end."""
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


def conv_matmul(x, kernel, strides=(1, 1), padding="VALID"):
  """NHWC x HWIO convolution as shifted slices + one matmul (same result as lax.conv)."""
  kh, kw, cin, cout = kernel.shape
  sh, sw = strides
  if padding == "SAME":
    ph = same_padding(x.shape[1], kh, sh)
    pw = same_padding(x.shape[2], kw, sw)
    x = jnp.pad(x, ((0, 0), ph, pw, (0, 0)))
  oh = (x.shape[1] - kh) // sh + 1
  ow = (x.shape[2] - kw) // sw + 1
  if kh == kw == 1:
    patches = x[:, : sh * (oh - 1) + 1 : sh, : sw * (ow - 1) + 1 : sw, :]
  else:
    x = fast_ops.materialize(x)  # else XLA recomputes x's producers in all k*k slices
    patches = im2col(x, kh, kw, sh, sw, oh, ow)
  return patches @ kernel.reshape(kh * kw * cin, cout)


def im2col(x, kh, kw, sh, sw, oh, ow):
  """(N, oh, ow, kh*kw*C): the k*k shifted (strided) views of x, side by side."""
  return jnp.concatenate(
      [x[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]
       for i in range(kh) for j in range(kw)], axis=-1)


def conv_xla(x, kernel, strides=(1, 1), padding="VALID"):
  return lax.conv_general_dilated(x, kernel, strides, padding,
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


def conv_mixed(x, kernel, strides=(1, 1), padding="VALID"):
  """conv_xla's values, with a gradient built from the forms XLA:CPU runs fastest.

  Why (experiments/BENCH.md, "mixed conv"): XLA:CPU runs a forward `lax.conv` through
  YNNPACK, 2.5-3x faster than the im2col matmul, but the weight gradient that autodiff
  derives from it is another convolution that XLA:CPU runs 10-80x slower inside a
  `lax.scan` (where digitjax trains in blocks of steps). So:
  - forward: `lax.conv`;
  - input gradient: a forward `lax.conv` of the padded output gradient with the flipped
    kernel (exactly the transpose autodiff builds, with the kernel laid out HWIO);
  - weight gradient: one matmul per kernel tap, x's shifted view against the gradient
    (for a 1-channel input, the k*k views stacked into one matmul).
  Strided convolutions keep the matmul form.
  """
  if tuple(strides) != (1, 1):
    return conv_matmul(x, kernel, strides, padding)
  kh, kw = kernel.shape[:2]
  pads = ((0, 0), (0, 0)) if padding == "VALID" else (
      same_padding(x.shape[1], kh, 1), same_padding(x.shape[2], kw, 1))
  if kh * kw > 1:
    x = fast_ops.materialize(x)  # else XLA recomputes x's producers in all k*k views
  return _conv_mixed(x, kernel, pads)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_mixed(x, kernel, pads):
  return lax.conv_general_dilated(x, kernel, (1, 1), pads,
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _conv_mixed_fwd(x, kernel, pads):
  return _conv_mixed(x, kernel, pads), (x, kernel)


def _conv_mixed_bwd(pads, saved, g):
  x, kernel = saved
  kh, kw = kernel.shape[:2]
  flipped = jnp.swapaxes(kernel[::-1, ::-1], 2, 3)  # HWIO of the transposed conv
  back = ((kh - 1 - pads[0][0], kh - 1 - pads[0][1]),
          (kw - 1 - pads[1][0], kw - 1 - pads[1][1]))
  dx = lax.conv_general_dilated(g, flipped, (1, 1), back,
                                dimension_numbers=("NHWC", "HWIO", "NHWC"))
  xp = jnp.pad(x, ((0, 0), *pads, (0, 0)))
  return dx, kernel_gradient(xp, g, kh, kw)


_conv_mixed.defvjp(_conv_mixed_fwd, _conv_mixed_bwd)


def kernel_gradient(x, g, kh, kw):
  """d(sum(g * conv(x, W)))/dW for a stride-1 VALID conv: per tap, view^T @ g."""
  _, oh, ow, cout = g.shape
  cin = x.shape[-1]
  grad = g.reshape(-1, cout)
  views = [x[:, i : i + oh, j : j + ow, :].reshape(-1, cin)
           for i in range(kh) for j in range(kw)]
  if cin == 1:  # k*k matrix-vector products would waste the matmul: one (k*k, M) @ (M, O)
    return (jnp.concatenate(views, axis=1).T @ grad).reshape(kh, kw, 1, cout)
  return jnp.stack([v.T @ grad for v in views]).reshape(kh, kw, cin, cout)


# model.conv_impl -> the function Conv calls (same parameters, same numbers up to rounding)
CONVS = {"matmul": conv_matmul, "xla": conv_xla, "mixed": conv_mixed}
CONV_IMPLS = tuple(CONVS)


class Conv(nn.Module):
  """keras.layers.Conv2D."""
  features: int
  kernel_size: int | Sequence[int] = 3
  strides: int | Sequence[int] = 1
  padding: str = "valid"
  activation: str | None = "relu"
  kernel_init: str = "glorot_uniform"
  bias_init: float = 0.0  # a constant, as keras.initializers.Constant (0 = Keras default)
  l2: float = 0.0
  impl: str = "matmul"

  @nn.compact
  def __call__(self, x, train: bool = False):
    kh, kw = _pair(self.kernel_size)
    kernel = self.param("kernel", INITIALIZERS[self.kernel_init](),
                        (kh, kw, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.constant(self.bias_init), (self.features,))
    _sow_l2(self, kernel, self.l2)
    y = CONVS[self.impl](x, kernel, _pair(self.strides), self.padding.upper()) + bias
    return _activate(y, self.activation)


class Dense(nn.Module):
  """keras.layers.Dense."""
  features: int
  activation: str | None = "relu"
  kernel_init: str = "glorot_uniform"
  bias_init: float = 0.0
  l2: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool = False):
    kernel = self.param("kernel", INITIALIZERS[self.kernel_init](),
                        (x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.constant(self.bias_init), (self.features,))
    _sow_l2(self, kernel, self.l2)
    return _activate(x @ kernel + bias, self.activation)


class MaxPool(nn.Module):
  """keras.layers.MaxPooling2D (strides default to the pool size)."""
  pool_size: int | Sequence[int] = 2
  strides: int | Sequence[int] | None = None
  padding: str = "valid"

  def __call__(self, x, train: bool = False):
    window = _pair(self.pool_size)
    return fast_ops.max_pool(x, window, _pair(self.strides or self.pool_size),
                             self.padding.upper())


class AvgPool(MaxPool):
  """keras.layers.AveragePooling2D."""

  def __call__(self, x, train: bool = False):
    window = _pair(self.pool_size)
    return nn.avg_pool(x, window, _pair(self.strides or self.pool_size), self.padding.upper())


class GlobalAvgPool(nn.Module):
  """keras.layers.GlobalAveragePooling2D."""

  def __call__(self, x, train: bool = False):
    return x.mean(axis=(1, 2))


class Flatten(nn.Module):
  """keras.layers.Flatten."""

  def __call__(self, x, train: bool = False):
    return x.reshape(x.shape[0], -1)


class ZeroPad(nn.Module):
  """keras.layers.ZeroPadding2D."""
  padding: int = 1

  def __call__(self, x, train: bool = False):
    p = self.padding
    return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))


class _DropoutMask(nn.Module):
  """Draws the key where nn.Dropout would (a child named Dropout_0), so masks match."""
  rate: float

  def __call__(self, x):
    return fast_ops.dropout(x, self.rate, self.make_rng("dropout"))


class Dropout(nn.Module):
  """keras.layers.Dropout; draws from the 'dropout' rng stream in training."""
  rate: float

  @nn.compact
  def __call__(self, x, train: bool = False):
    if not train or self.rate == 0.0:
      return x
    return _DropoutMask(self.rate, name="Dropout_0")(x)


class BatchNorm(nn.Module):
  """keras.layers.BatchNormalization; axis_name averages batch statistics over devices."""
  momentum: float = 0.99
  epsilon: float = 1e-3
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x, train: bool = False):
    return nn.BatchNorm(use_running_average=not train, momentum=self.momentum,
                        epsilon=self.epsilon, axis_name=self.axis_name)(x)


class Rescaling(nn.Module):
  """keras.layers.Rescaling: x * scale + offset.

  digitjax always feeds [0, 1] images, so a Keras Rescaling on raw [0, 255] pixels is
  re-expressed on them: Rescaling(1/127.5, offset=-1) is scale 2, offset -1 here.
  """
  scale: float = 1.0
  offset: float = 0.0

  def __call__(self, x, train: bool = False):
    return x * self.scale + self.offset


# A family's own fields for a Keras Rescaling layer at the model's input (flowers_cnn,
# alexnet, vgg16): the defaults add no layer.
INPUT_FIELDS = dict(input_scale=1.0, input_offset=0.0)


def check_input_fields(check, m) -> None:
  """config.validate's checks of INPUT_FIELDS (check: its collector of sentences)."""
  check.in_range("model.input_scale", m.input_scale, 0, float("inf"), lo_open=True)
  check.in_range("model.input_offset", m.input_offset, -float("inf"), float("inf"))


def rescales(m) -> bool:
  """Whether model.input_scale / input_offset (or a module's own) ask for a Rescaling:
  not at 1 and 0, which add no layer."""
  return (m.input_scale, m.input_offset) != (1.0, 0.0)


def input_rescaling(m) -> list:
  """[the Rescaling layer spec] for model.input_scale / input_offset, [] at 1 and 0."""
  if not rescales(m):
    return []
  return [("Rescaling", dict(scale=m.input_scale, offset=m.input_offset))]


class Activation(nn.Module):
  """keras.layers.Activation."""
  activation: str = "relu"

  def __call__(self, x, train: bool = False):
    return _activate(x, self.activation)


LAYERS: dict[str, type[nn.Module]] = {
    cls.__name__: cls for cls in (Conv, Dense, MaxPool, AvgPool, GlobalAvgPool, Flatten,
                                  ZeroPad, Dropout, BatchNorm, Rescaling, Activation)
}


def _snake(name: str) -> str:
  return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


class Sequential(nn.Module):
  """keras.Sequential over layer specs: a tuple of (layer type name, kwargs dict).

  Layers are named `<index>_<type>` (e.g. `03_batch_norm`) so parameters, summaries and
  checkpoints read in model order; a spec whose kwargs hold a "name" keeps that name
  instead (keras.applications' `block1_conv1`, `fc1`, ...).
  """
  layers: Sequence[tuple[str, dict[str, Any]]]

  @nn.compact
  def __call__(self, x, train: bool = False):
    for i, (kind, kwargs) in enumerate(self.layers):
      kwargs = dict(kwargs)
      name = kwargs.pop("name", None) or f"{i:02d}_{_snake(kind)}"
      x = LAYERS[kind](**kwargs, name=name)(x, train=train)
    return x
