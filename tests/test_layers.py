"""Layer shapes and parameter counts (Keras's numbers), and conv numerics."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from digitjax import config as base
from digitjax import models
from digitjax.models import layers as L


def _init_apply(layer, x, train=False):
  """Jitted, as models run: op by op, a matmul conv's slices each compile apart."""
  v = jax.jit(lambda x: layer.init({"params": jax.random.key(0), "dropout": jax.random.key(1)},
                                   x, train=train))(x)
  y = jax.jit(lambda v, x: layer.apply(v, x, train=train, rngs={"dropout": jax.random.key(2)},
                                       mutable=["batch_stats", "losses"])[0])(v, x)
  n = sum(p.size for p in jax.tree.leaves(v.get("params", {})))
  return y, n, v


@pytest.mark.parametrize("layer,in_shape,out_shape,params", [
    (L.Conv(32, 3), (2, 28, 28, 1), (2, 26, 26, 32), 320),
    (L.Conv(32, 3, padding="same"), (2, 28, 28, 1), (2, 28, 28, 32), 320),
    (L.Conv(64, 3, strides=2), (2, 26, 26, 32), (2, 12, 12, 64), 18496),
    (L.Conv(8, 2, padding="same"), (2, 7, 7, 3), (2, 7, 7, 8), 104),
    (L.Conv(16, (5, 3), strides=(2, 1), padding="same"), (2, 9, 9, 2), (2, 5, 9, 16), 496),
    (L.Dense(10, activation=None), (2, 784), (2, 10), 7850),
    (L.MaxPool(2), (2, 26, 26, 8), (2, 13, 13, 8), 0),
    (L.MaxPool(3, strides=2), (2, 27, 27, 8), (2, 13, 13, 8), 0),
    (L.AvgPool(2), (2, 5, 5, 8), (2, 2, 2, 8), 0),
    (L.GlobalAvgPool(), (2, 5, 5, 8), (2, 8), 0),
    (L.Flatten(), (2, 5, 5, 8), (2, 200), 0),
    (L.ZeroPad(2), (2, 5, 5, 8), (2, 9, 9, 8), 0),
    (L.Dropout(0.5), (2, 10), (2, 10), 0),
    (L.BatchNorm(), (2, 5, 5, 8), (2, 5, 5, 8), 16),
])
def test_layer_shapes_and_params(layer, in_shape, out_shape, params):
  y, n, _ = _init_apply(layer, jnp.ones(in_shape), train=True)
  assert y.shape == out_shape
  assert n == params


def test_dropout_drops_in_training_only():
  x = jnp.ones((4, 1000))
  y_train, _, _ = _init_apply(L.Dropout(0.5), x, train=True)
  y_eval, _, _ = _init_apply(L.Dropout(0.5), x, train=False)
  assert 0.4 < float((y_train == 0).mean()) < 0.6
  np.testing.assert_array_equal(y_eval, x)


def test_kernel_l2_is_sown_as_a_loss():
  layer = L.Dense(3, l2=0.01)
  y, _, v = _init_apply(layer, jnp.ones((1, 4)))
  _, mutated = layer.apply(v, jnp.ones((1, 4)), mutable=["losses"])
  expected = 0.01 * float(jnp.sum(v["params"]["kernel"] ** 2))
  assert float(jax.tree.leaves(mutated["losses"])[0]) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("k,stride,padding", [
    (3, 1, "VALID"), (3, 1, "SAME"), (1, 1, "VALID"), (3, 2, "VALID"), (4, 1, "VALID"),
    (2, 1, "SAME"), (5, 2, "SAME"), (11, 4, "VALID")])
def test_matmul_conv_matches_lax_conv(k, stride, padding):
  """Jitted, as models run them: op by op, the matmul form's k*k slices each compile
  apart (11x11: ~60 s under load)."""
  kx, kk = jax.random.split(jax.random.key(0))
  x = jax.random.normal(kx, (3, 23, 23, 5))
  w = jax.random.normal(kk, (k, k, 5, 7))
  conv = lambda impl: jax.jit(lambda x, w: impl(x, w, (stride, stride), padding))
  ref, out = conv(L.conv_xla)(x, w), conv(L.conv_matmul)(x, w)
  np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
  grad = lambda impl: jax.jit(jax.grad(lambda w: jnp.sum(conv(impl)(x, w) ** 2)))
  g_ref, g_out = grad(L.conv_xla)(w), grad(L.conv_matmul)(w)
  np.testing.assert_allclose(g_out, g_ref, rtol=1e-3, atol=1e-2)


@pytest.mark.parametrize("k,stride,padding,cin", [
    (3, 1, "VALID", 5), (3, 1, "SAME", 5), (1, 1, "VALID", 5), (4, 1, "VALID", 5),
    (2, 1, "SAME", 5), (5, 1, "VALID", 1), (5, 1, "SAME", 1), (3, 2, "VALID", 5),
    (5, 2, "SAME", 5)])
def test_mixed_conv_matches_lax_conv_values_and_both_gradients(k, stride, padding, cin):
  """conv_mixed's own backward (transposed lax.conv for x, per-tap matmuls for W) gives
  autodiff-of-lax.conv's gradients; strided convs take the matmul form."""
  kx, kk, kg = jax.random.split(jax.random.key(1), 3)
  x = jax.random.normal(kx, (3, 23, 22, cin))
  w = jax.random.normal(kk, (k, k, cin, 7))
  loss = lambda conv: lambda x, w: jnp.sum(jnp.sin(conv(x, w, (stride, stride), padding)))
  ref, (dx_ref, dw_ref) = jax.value_and_grad(loss(L.conv_xla), argnums=(0, 1))(x, w)
  out, (dx, dw) = jax.jit(jax.value_and_grad(loss(L.conv_mixed), argnums=(0, 1)))(x, w)
  np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-3)
  np.testing.assert_allclose(dx, dx_ref, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(dw, dw_ref, rtol=1e-4, atol=1e-3)


def test_mixed_conv_is_a_model_option_with_the_same_numbers():
  c = base.get_config()
  c.model.name = "cnn_bn"
  x = jax.random.uniform(jax.random.key(2), (4, 28, 28, 1))
  built = {}
  for impl in ("matmul", "mixed"):
    c.model.conv_impl = impl
    model = models.build(c, 10)
    built[impl] = model
  v = jax.jit(built["matmul"].init)(jax.random.key(3), x)  # jitted: op by op is ~60 s
  a, b = (jax.jit(built[i].apply)(v, x) for i in ("matmul", "mixed"))
  np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,shape,hidden,trainable,total", [
    ("cnn_bn", (28, 28, 1), None, 234_026, 234_378),   # B6, report's trainable count
    ("net1", (28, 28, 1), None, 1_199_882, 1_199_882),  # D1, published
    ("net2", (28, 28, 1), None, 1_199_882, 1_199_882),  # D2, published
    ("net1", (32, 32, 3), None, 1_626_442, 1_626_442),  # D3, published
    ("keras_cnn", (28, 28, 1), None, 1_199_882, 1_199_882),  # B2 = Keras example
    ("mlp", (28, 28, 1), (512, 512), 669_706, 669_706),  # B1 keras_mlp
    ("perceptron", (28, 28, 1), None, 7_850, 7_850),  # A1
])
def test_model_param_counts_match_keras(name, shape, hidden, trainable, total):
  c = base.get_config()
  c.model.name = name
  if hidden:
    c.model.hidden_units = hidden
  text, totals = models.summary(models.build(c, 10), shape, name)
  assert totals["trainable"] == trainable
  assert totals["total"] == total
  assert f"Total params: {total:,}" in text


@pytest.mark.parametrize("conv_paddings,pool_padding,side", [
    (("same", "valid", "valid"), "valid", 2),  # B4's reading (configs/report_b.py)
    (("valid", "same", "valid"), "valid", 2),
    (("valid", "valid", "same"), "valid", 2),
    (("valid", "valid", "valid"), "same", 2),
    (("valid", "valid", "valid"), "valid", 1),  # Keras's defaults: not the report's map
])
def test_b4_paddings_set_the_map_before_the_dense_layers(conv_paddings, pool_padding, side):
  c = base.get_config()
  c.model.name = "cnn3_v1"
  c.model.conv_paddings, c.model.pool_padding = conv_paddings, pool_padding
  text, totals = models.summary(models.build(c, 10), (28, 28, 1), "cnn3_v1")
  assert f"(None, {side}, {side}, 64)" in next(l for l in text.splitlines()
                                                 if l.startswith("05_max_pool"))
  # 320 + 9,248 + 18,496 + (side*side*64 + 1) * 128 + 1,290
  assert totals["trainable"] == 29_354 + (side * side * 64 + 1) * 128


def test_b4_config_has_the_reports_2x2_map():
  from configs import report_b
  c = report_b.b4_cnn3_v1()
  text, totals = models.summary(models.build(c, 10), (28, 28, 1), "cnn3_v1")
  assert "(None, 2, 2, 64)" in text and totals["trainable"] == 62_250


def test_summary_lists_layers_in_order_with_shapes():
  c = base.get_config()
  text, _ = models.summary(models.build(c, 10), (28, 28, 1), "cnn_bn")
  lines = text.splitlines()
  first = next(i for i, l in enumerate(lines) if l.startswith("00_conv"))
  assert "(None, 26, 26, 16)" in lines[first] and lines[first].rstrip().endswith("160")
  assert "(None, 5, 5, 64)" in next(l for l in lines if l.startswith("11_conv"))
