"""The reports' CNNs as digitjax built them before its CPU layer work: bench's baseline.

digitjax's MaxPool, Dropout and matmul Conv compute what flax's nn.max_pool, nn.Dropout
and a plain im2col matmul compute (values, gradients, dropout masks: tests/
test_fast_layers.py), in forms XLA:CPU runs faster (digitjax/models/fast_ops.py): pooling
as a block max with an int8 argmax, the dropout hash inline, and a fusion boundary
(fast_ops.materialize) before a conv's k*k patch slices. `python -m experiments.perf.bench
--reference-layers` times the same models with the stock forms, to measure what that work
gained; `reference_layers()` is how.

Why an interceptor: the trainer builds its model from the config (digitjax.models.build),
and no config field picks these forms, so bench cannot ask for them as it asks for a conv
form (`model.conv_impl`). Inside `with reference_layers():` flax's nn.intercept_methods
answers those three layers' __call__ the stock way, on this thread only; digitjax's modules
and registries are left as they are (bench used to swap entries of
digitjax.models.layers.LAYERS and fast_ops.materialize, for the whole process). A program
takes the forms it was traced with, so build, trace and compile it inside the block.
"""
from __future__ import annotations

import contextlib

import flax.linen as nn
import jax.numpy as jnp

from digitjax.models import layers as L


def _pair(v) -> tuple[int, int]:
  return (v, v) if isinstance(v, int) else tuple(v)


def _max_pool(m: L.MaxPool, x):
  return nn.max_pool(x, _pair(m.pool_size), _pair(m.strides or m.pool_size),
                     m.padding.upper())


def _dropout(m: L.Dropout, x, train: bool):
  if not train or m.rate == 0.0:
    return x
  # created inside m's compact __call__: named Dropout_0 as digitjax's own mask module is,
  # so it draws the same key and the same mask
  return nn.Dropout(m.rate, deterministic=False)(x)


def _conv(m: L.Conv, x):
  """L.Conv with impl "matmul", less the fusion boundary before the patch slices."""
  kh, kw = _pair(m.kernel_size)
  (sh, sw), cin = _pair(m.strides), x.shape[-1]
  kernel = m.param("kernel", L.INITIALIZERS[m.kernel_init](), (kh, kw, cin, m.features))
  bias = m.param("bias", nn.initializers.constant(m.bias_init), (m.features,))
  if m.l2:
    m.sow("losses", "l2", m.l2 * jnp.sum(jnp.square(kernel)))
  if m.padding.upper() == "SAME":
    x = jnp.pad(x, ((0, 0), L.same_padding(x.shape[1], kh, sh),
                    L.same_padding(x.shape[2], kw, sw), (0, 0)))
  oh, ow = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
  patches = L.im2col(x, kh, kw, sh, sw, oh, ow)
  y = patches @ kernel.reshape(kh * kw * cin, m.features) + bias
  activation = L.ACTIVATIONS[m.activation or "linear"]
  return y if activation is None else activation(y)


def _stock(next_fun, args, kwargs, context):
  """The interceptor: MaxPool, Dropout and the matmul Conv the stock way, all else as is."""
  m, call = context.module, context.method_name == "__call__"
  if call and type(m) is L.MaxPool:  # not AvgPool, its subclass
    return _max_pool(m, args[0])
  if call and type(m) is L.Dropout:
    return _dropout(m, args[0], kwargs.get("train", args[1] if len(args) > 1 else False))
  if call and type(m) is L.Conv and m.impl == "matmul":
    return _conv(m, args[0])
  return next_fun(*args, **kwargs)


@contextlib.contextmanager
def reference_layers():
  """Models built and traced inside use flax's nn.max_pool and nn.Dropout and a matmul
  conv with no fusion boundary, as digitjax did before its CPU layer work."""
  with nn.intercept_methods(_stock):
    yield
