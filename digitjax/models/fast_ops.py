"""CPU-friendly forms of max-pooling and dropout, with the reference's exact numbers.

Why: profiling the cnn_bn train step on XLA:CPU (experiments/BENCH.md) showed two layers
costing far more than their arithmetic:

- `nn.max_pool`'s gradient lowers to a variadic reduce-window over (value, iota index)
  pairs plus select-and-scatter: three int32 index maps as large as the pooled input,
  written and read every step. When the stride equals the window (every pool in the
  reports), pooling is a reshape and a max, and its gradient needs only which of the
  p*q window positions won: an int8 per output, and an elementwise select going back.
- `nn.Dropout` draws its mask with jax.random.bernoulli. With partitionable threefry (the
  default) the counters come from a 64-bit iota built per dimension, and on CPU the hash
  runs as a rolled while-loop that writes its state to memory five times. Here the same
  hash is written out in jnp on a flat 32-bit iota, so XLA fuses counter, hash, compare
  and the select into elementwise loops. The mask is then written to memory once
  (`materialize`), so neither the backward pass nor a following matmul-conv's k*k patch
  slices recompute the hash. The mask is bit-for-bit the one
  jax.random.bernoulli(key, 1 - rate, shape) draws (tests/test_fast_layers.py checks
  it), so a seed trains exactly as before.

Both fall back to the library functions outside these cases.

`materialize` is the fusion boundary the two need. XLA:CPU duplicates cheap elementwise
producers (the 60-op dropout hash, BatchNorm, ReLU) into every consumer fusion: into
each of the 9 shifted slices of a 3x3 matmul-conv, and again into the backward pass.
`lax.optimization_barrier` cannot stop it (XLA:CPU strips barriers before fusion); a
conditional can, because fusion never crosses a conditional's boundary.
"""
from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


# --- max-pooling ------------------------------------------------------------------------

def _windows(x, window):
  """(N, H, W, C) with H, W multiples of the window -> list of the p*q strided views."""
  ph, pw = window
  n, h, w, c = x.shape
  blocks = x.reshape(n, h // ph, ph, w // pw, pw, c)
  return [blocks[:, :, i, :, j, :] for i in range(ph) for j in range(pw)]


def _first_argmax(views):
  """Max and index of the first maximum, scanning in XLA's select order (`>=` keeps)."""
  best, arg = views[0], jnp.zeros(views[0].shape, jnp.int8)
  for k, v in enumerate(views[1:], start=1):
    keep = best >= v  # as select-and-scatter's select: NaN never "keeps"
    best = jnp.where(keep, best, v)
    arg = jnp.where(keep, arg, jnp.int8(k))
  return best, arg


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _block_max(x, window):
  return x.reshape(x.shape[0], x.shape[1] // window[0], window[0],
                   x.shape[2] // window[1], window[1], x.shape[3]).max(axis=(2, 4))


def _block_max_fwd(x, window):
  y = _block_max(x, window)
  _, arg = _first_argmax(_windows(x, window))
  return y, arg


def _block_max_bwd(window, arg, g):
  ph, pw = window
  n, oh, ow, c = g.shape
  pos = jnp.arange(ph * pw, dtype=jnp.int8).reshape(1, 1, ph, 1, pw, 1)
  dx = jnp.where(arg[:, :, None, :, None, :] == pos, g[:, :, None, :, None, :],
                 jnp.zeros((), g.dtype))
  return (dx.reshape(n, oh * ph, ow * pw, c),)


_block_max.defvjp(_block_max_fwd, _block_max_bwd)


def max_pool(x, window, strides, padding="VALID"):
  """nn.max_pool on NHWC; when strides == window, as reshape + max (same values/grads).

  The gradient goes wholly to the first maximum of each window in row-major order, as
  the select-and-scatter gradient of lax.reduce_window does (ties are common after
  ReLU -> BatchNorm, where every clipped zero becomes the same value).
  """
  window, strides = tuple(window), tuple(strides)
  if strides != window or x.ndim != 4 or padding not in ("VALID", "SAME"):
    return nn.max_pool(x, window, strides, padding)
  h, w = x.shape[1:3]
  (ph, pw) = window
  if padding == "VALID":
    x = x[:, : h // ph * ph, : w // pw * pw]
  else:  # TF 'same': output ceil(size / p), the odd padding pixel at the end
    th, tw = -h % ph, -w % pw
    if th or tw:
      x = jnp.pad(x, ((0, 0), (th // 2, th - th // 2), (tw // 2, tw - tw // 2), (0, 0)),
                  constant_values=-jnp.inf)
  if x.shape[1] == 0 or x.shape[2] == 0:
    return nn.max_pool(x, window, strides, "VALID")
  return _block_max(x, window)


# --- a fusion boundary ------------------------------------------------------------------

@jax.custom_vjp
def materialize(x):
  """x, computed once into a buffer that later fusions read instead of recomputing x.

  The value is unchanged: both branches return x (the second adds +0.0, which only
  turns -0.0 into +0.0, so XLA cannot merge the branches or fold the conditional). The
  predicate reads x itself (false only for a NaN), so XLA cannot fold it either. The
  gradient passes straight through.
  """
  if not jnp.issubdtype(x.dtype, jnp.floating) or x.size == 0:
    return x
  first = x.reshape(-1)[0]
  return lax.cond(first == first, lambda v: v, lambda v: v + jnp.zeros((), v.dtype), x)


materialize.defvjp(lambda x: (materialize(x), None), lambda _, g: (g,))


# --- dropout ----------------------------------------------------------------------------

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _rotl(x, d: int):
  return (x << np.uint32(d)) | (x >> np.uint32(32 - d))


def threefry2x32(k1, k2, x1, x2):
  """The Threefry-2x32 hash (20 rounds) of jax.random, unrolled in plain jnp ops."""
  ks = (k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA))
  x1 = x1 + ks[0]
  x2 = x2 + ks[1]
  for i in range(5):
    for r in _ROTATIONS[i % 2]:
      x1 = x1 + x2
      x2 = _rotl(x2, r) ^ x1
    x1 = x1 + ks[(i + 1) % 3]
    x2 = x2 + ks[(i + 2) % 3] + np.uint32(i + 1)
  return x1, x2


def _is_threefry(key) -> bool:
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    return str(jax.random.key_impl(key)) in ("threefry2x32", "fry")
  return key.dtype == jnp.uint32 and key.shape == (2,) and (
      jax.config.jax_default_prng_impl == "threefry2x32")


def bernoulli(key, p: float, shape) -> jax.Array:
  """jax.random.bernoulli(key, p, shape), bit for bit, as one fusible elementwise loop.

  jax.random.uniform keeps the top 23 bits m of each 32-bit draw and returns m * 2**-23
  (exact in float32), so `uniform < p` is the integer test m < ceil(p * 2**23).
  """
  size = math.prod(shape)
  if (not jax.config.jax_threefry_partitionable or not _is_threefry(key)
      or size >= 2 ** 32):
    return jax.random.bernoulli(key, p, shape)
  data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
  counts = lax.iota(jnp.uint32, size).reshape(shape)  # low words; high words are 0
  b1, b2 = threefry2x32(data[0], data[1], jnp.zeros((), jnp.uint32), counts)
  threshold = math.ceil(float(np.float32(p)) * 2 ** 23)
  return ((b1 ^ b2) >> np.uint32(9)) < np.uint32(threshold)


def dropout(x, rate: float, key):
  """nn.Dropout(rate)(x) in training, same mask, same scaling, same gradient."""
  if rate == 0.0:
    return x
  if rate == 1.0:
    return jnp.zeros_like(x)
  keep_prob = 1.0 - rate
  # The mask goes to memory once, as 0/1 floats (a bool would let XLA fold the
  # conditional's predicate), and the forward and backward passes both read it.
  mask = materialize(bernoulli(key, keep_prob, x.shape).astype(x.dtype)) != 0
  return lax.select(mask, x / keep_prob, jnp.zeros_like(x))
