"""The fast MaxPool and Dropout give the reference's numbers: values, gradients, masks."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from digitjax.models import fast_ops
from digitjax.models import layers as L


def _tied(shape, seed=0):
  """ReLU'd rounded normals: most 2x2 windows hold ties (as after ReLU -> BatchNorm)."""
  x = jnp.round(jax.random.normal(jax.random.key(seed), shape) * 1.5)
  return jnp.maximum(x, 0.0)


@pytest.mark.parametrize("shape,window,strides,padding", [
    ((2, 12, 12, 4), (2, 2), (2, 2), "VALID"),
    ((2, 13, 11, 4), (2, 2), (2, 2), "VALID"),   # odd sizes: last row/column dropped
    ((2, 9, 9, 3), (3, 3), (3, 3), "VALID"),
    ((2, 7, 9, 3), (2, 2), (2, 2), "SAME"),      # -inf padding, extra pixel at the end
    ((2, 10, 9, 3), (2, 3), (2, 3), "VALID"),
    ((2, 9, 9, 3), (3, 3), (2, 2), "VALID"),     # stride != window: library fallback
])
def test_max_pool_matches_nn_max_pool_values_and_gradients(shape, window, strides, padding):
  x = _tied(shape)
  assert float((x == 0).mean()) > 0.4  # the tie-breaking is really exercised
  ref = lambda x: nn.max_pool(x, window, strides, padding)
  new = jax.jit(lambda x: fast_ops.max_pool(x, window, strides, padding))
  np.testing.assert_array_equal(new(x), ref(x))
  g = jax.random.normal(jax.random.key(1), ref(x).shape)
  grad_ref = jax.vjp(ref, x)[1](g)[0]
  grad_new = jax.jit(lambda x, g: jax.vjp(new, x)[1](g)[0])(x, g)
  np.testing.assert_array_equal(grad_new, grad_ref)  # first maximum gets it all


def test_max_pool_layer_gradient_matches_in_a_conv_bn_block():
  """Pool after Conv -> ReLU -> BatchNorm, as in cnn_bn; gradients wrt the kernel agree."""
  x = jax.random.normal(jax.random.key(0), (4, 8, 8, 2))
  conv, bn = L.Conv(4, 3), L.BatchNorm()
  v = jax.jit(conv.init)(jax.random.key(1), x)  # jitted: op by op is ~50 s under load
  bv = jax.jit(bn.init)(jax.random.key(2), jax.jit(conv.apply)(v, x))

  def grad(pool):
    def loss(params):
      h = conv.apply({"params": params}, x)
      h, _ = bn.apply(bv, h, train=True, mutable=["batch_stats"])
      return jnp.sum(pool(h) ** 2)
    return jax.jit(jax.grad(loss))(v["params"])

  ref = grad(lambda h: nn.max_pool(h, (2, 2), (2, 2)))
  new = grad(lambda h: L.MaxPool(2).apply({}, h))
  for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(ref)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("p,shape", [(0.8, (8, 13, 13, 16)), (0.65, (7,)), (0.5, (3, 5)),
                                     (0.123, (1000,))])
def test_bernoulli_is_jax_random_bernoulli_bit_for_bit(p, shape):
  key = jax.random.fold_in(jax.random.key(3), 17)
  fast = jax.jit(fast_ops.bernoulli, static_argnums=(1, 2))(key, p, shape)
  np.testing.assert_array_equal(fast, jax.random.bernoulli(key, p, shape))


def test_bernoulli_accepts_raw_uint32_keys():
  key = jax.random.PRNGKey(5)
  np.testing.assert_array_equal(fast_ops.bernoulli(key, 0.8, (1000,)),
                                jax.random.bernoulli(key, 0.8, (1000,)))


class _RefDropout(nn.Module):
  rate: float

  @nn.compact
  def __call__(self, x, train=False):
    return nn.Dropout(self.rate, deterministic=not train)(x)


class _Two(nn.Module):
  cls: type

  @nn.compact
  def __call__(self, x, train=True):
    x = self.cls(0.3, name="02_dropout")(x, train=train)
    return self.cls(0.5, name="03_dropout")(x, train=train)


def test_dropout_layer_draws_the_same_masks_and_gradients_as_nn_dropout():
  x = jax.random.normal(jax.random.key(0), (8, 13, 13, 8))
  rngs = {"dropout": jax.random.fold_in(jax.random.key(9), 4)}
  f_ref = jax.jit(lambda x: _Two(_RefDropout).apply({}, x, rngs=rngs))
  f_new = jax.jit(lambda x: _Two(L.Dropout).apply({}, x, rngs=rngs))
  np.testing.assert_array_equal(f_new(x), f_ref(x))
  assert 0.55 < float((f_new(x) == 0).mean()) < 0.75  # 1 - 0.7 * 0.5 = 0.65 dropped
  g = jax.random.normal(jax.random.key(1), x.shape)
  vjp = lambda f: jax.jit(lambda x, g: jax.vjp(f, x)[1](g)[0])(x, g)
  np.testing.assert_array_equal(vjp(f_new), vjp(f_ref))
  np.testing.assert_array_equal(_Two(L.Dropout).apply({}, x, train=False), x)


def test_materialize_keeps_values_and_gradients_and_is_a_real_boundary():
  from digitjax.models import fast_ops
  x = jax.random.normal(jax.random.key(0), (4, 6, 6, 3)).at[0, 0, 0, 0].set(-0.0)
  y = jax.jit(fast_ops.materialize)(x)
  np.testing.assert_array_equal(np.asarray(y), np.asarray(x))
  nan = x.at[0, 0, 0, 0].set(jnp.nan)  # the other branch: same values
  np.testing.assert_array_equal(np.asarray(jax.jit(fast_ops.materialize)(nan)), np.asarray(nan))
  g = jax.grad(lambda v: jnp.sum(jnp.sin(fast_ops.materialize(v)) * 3.0))(x)
  np.testing.assert_allclose(np.asarray(g), 3.0 * np.cos(np.asarray(x)), rtol=1e-6)
  # XLA keeps the conditional: the fusion boundary survives optimisation.
  hlo = jax.jit(lambda v: fast_ops.materialize(v * 2.0) + 1.0).lower(x).compile().as_text()
  assert "conditional" in hlo
