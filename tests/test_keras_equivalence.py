"""Report E's large networks equal Keras's layer for layer, number for number.

A parameter count does not prove a layout (GoogLeNet's 'same' and 'valid' stems have the
same count at 150x150), so each network is built in Keras 3 (JAX backend) as the report
built it: AlexNet, the hand-written VGG16 and GoogLeNet from experiments/keras/models.py, E4
straight from keras.applications.VGG16(weights=None, classes=5). Every Keras weight is
drawn at random (biases and BatchNorm statistics too, so that none hides behind a zero
or a one), copied into digitjax's parameter and batch_stats trees, and then:

1. inference: the logits agree (GoogLeNet's auxiliary heads do not run in digitjax's
   evaluation; they are compared in 2 and 3);
2. training mode, dropout off (rate 0 in Keras, identity in digitjax): the logits, both
   auxiliary heads' logits, and BatchNorm's updated moving statistics agree;
3. one SGD step of digitjax's own steps.train_step (the row's SGD config and rate,
   softmax cross-entropy, GoogLeNet's aux losses weighted by config.model.aux_weight)
   equals jax.grad of Keras's stateless_call (Keras's categorical cross-entropy of the
   softmax outputs, from their logits as tf.keras computes it) followed by
   keras.optimizers.SGD: same loss, same new weights, same BatchNorm statistics.

The pairs are built by tests/keras_pairs.py, whose mapping is strict: every digitjax
leaf receives exactly one Keras weight. Inputs are the smallest that keep each network's
real layout and leave a map of at least 2x2 before each Flatten (so a flatten-order
mismatch would show); a batch of 2 random images, no dataset.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import functools  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":
  pytest.skip("these tests need Keras's JAX backend (KERAS_BACKEND=jax)",
              allow_module_level=True)

from digitjax import models, optim, steps  # noqa: E402
from digitjax.models import layers as dj_layers  # noqa: E402
import keras_pairs  # noqa: E402  (after the backend is set)

RTOL, ATOL = 1e-4, 1e-5
CLASSES = keras_pairs.CLASSES


def _close(actual, expected, what, rtol=RTOL, atol=ATOL):
  """atol is relative to the largest |expected| where that exceeds 1: float32 rounding
  scales with the magnitudes summed, so among raw-pixel logits of ~240 (E4, E5 feed
  [0, 255]) a logit near 0 carries errors of ~1e-3, 3e-6 of the scale, as at [0, 1]."""
  actual, expected = np.asarray(actual), np.asarray(expected)
  assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
  atol = atol * max(1.0, float(np.max(np.abs(expected))))
  np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)
  return float(np.max(np.abs(actual - expected)))


def _keras_input(name, x):
  """The images as the Keras model was fed them (KERAS_PIXELS): raw pixels for E2-E5 and
  the E6 ladder."""
  return x * keras_pairs.KERAS_PIXELS.get(name, 1.0)


def _keras_values(kmodel):
  return ([v.value for v in kmodel.trainable_variables],
          [v.value for v in kmodel.non_trainable_variables])


def _compare_bn(name, kmodel, paths, new_non_trainable, batch_stats):
  """Max |diff| of the updated moving statistics, and how many leaves were compared.
  Keras's non-trainable variables also hold its dropout seed generators: skipped."""
  where = {id(v): p for v, p in paths}
  diff, compared = 0.0, 0
  for v, value in zip(kmodel.non_trainable_variables, new_non_trainable):
    if id(v) not in where:
      assert "seed_generator" in v.path, v.path
      continue
    collection, path = where[id(v)]
    assert collection == "batch_stats", path
    diff = max(diff, _close(keras_pairs.get(batch_stats, path), value, f"{name} {path}"))
    compared += 1
  return diff, compared


@functools.cache
def _keras_call(name, training):
  """Keras's stateless_call, jitted (one compile instead of one per op, eagerly)."""
  kmodel = keras_pairs.case(name)[3]
  return jax.jit(lambda tv, ntv, x: kmodel.stateless_call(tv, ntv, x, training=training))


def _keras_outputs(out):
  return list(out) if isinstance(out, (list, tuple)) else [out]


@pytest.fixture(scope="module", autouse=True)
def _free_models():
  """The cached models (VGG16's 2 x ~40M weights) go when the module is done."""
  yield
  _keras_call.cache_clear()
  keras_pairs.case.cache_clear()
  keras.backend.clear_session()


@pytest.fixture
def no_dropout(monkeypatch):
  """digitjax's Dropout as the identity (Keras's side: rate 0), in training too."""
  monkeypatch.setattr(dj_layers.Dropout, "__call__", lambda self, x, train=False: x)


def _keras_no_dropout(kmodel):
  for layer in kmodel.layers:
    if isinstance(layer, keras.layers.Dropout):
      layer.rate = 0.0


NAMES = list(keras_pairs.CASES)


@pytest.mark.parametrize("name", NAMES)
def test_inference_logits_equal_keras(name):
  c, model, variables, kmodel, _, images, _ = keras_pairs.case(name)
  x = steps.to_float(jnp.asarray(images))
  logits = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
  trainable, non_trainable = _keras_values(kmodel)
  kout, _ = _keras_call(name, False)(trainable, non_trainable, _keras_input(name, x))
  diff = _close(logits, _keras_outputs(kout)[0], f"{name} inference logits")
  print(f"{name} inference: max |logits diff| {diff:.2e}")


@pytest.mark.parametrize("name", NAMES)
def test_training_mode_outputs_and_bn_statistics_equal_keras(name, no_dropout):
  c, model, variables, kmodel, paths, images, _ = keras_pairs.case(name)
  _keras_no_dropout(kmodel)
  x = steps.to_float(jnp.asarray(images))

  @jax.jit
  def forward(v, x):
    return model.apply(v, x, train=True, mutable=["batch_stats", "aux"],
                       rngs={"dropout": jax.random.key(0)})

  logits, state = forward(variables, x)
  trainable, non_trainable = _keras_values(kmodel)
  kout, new_non_trainable = _keras_call(name, True)(trainable, non_trainable,
                                                    _keras_input(name, x))
  kout = _keras_outputs(kout)
  diffs = [_close(logits, kout[0], f"{name} training logits")]
  aux = [a for a in jax.tree.leaves(state.get("aux", {}))]
  assert len(aux) == len(kout) - 1  # GoogLeNet: [aux_1, aux_2]; the others: none
  for i, (a, k) in enumerate(zip(aux, kout[1:]), start=1):
    diffs.append(_close(a, k, f"{name} training aux_{i} logits"))
  bn, compared = _compare_bn(name, kmodel, paths, new_non_trainable, state.get("batch_stats"))
  bns = sum(isinstance(l, keras.layers.BatchNormalization) for l in kmodel.layers)
  assert compared == 2 * bns and bns == {"alexnet": 5, "v7_step4": 4, "v7_step5": 4}.get(
      name, 0)  # each BN's (mean, var)
  print(f"{name} training: max |diff| logits {diffs[0]:.2e}, aux {diffs[1:]}, "
        f"BN moving stats {bn:.2e}")


# GoogLeNet's step takes ~35 s here: slow (its layout is proven by the logits tests)
def _keras_sgd_step(name, kmodel, images, labels, lr, aux_weight):
  """Keras's loss, weights before and after one SGD step, and new BatchNorm statistics.

  Categorical cross-entropy of the softmax outputs (aux outputs weighted), SGD. The
  authors' tf.keras takes a softmax output's logits for it (the TensorFlow backend's
  _get_logits, "to prevent collapsing zero"); Keras 3 on JAX cannot and clips the
  probabilities at 1e-7, which the raw-pixel logits of E4/E5 (~240) would hit. So the
  cross-entropy is taken from the logits, as TensorFlow did."""
  x = steps.to_float(jnp.asarray(images))
  onehot = jax.nn.one_hot(labels, CLASSES)
  trainable, non_trainable = _keras_values(kmodel)

  def loss_fn(trainable):
    out, new_nt = kmodel.stateless_call(trainable, non_trainable, _keras_input(name, x),
                                        training=True)
    ce = [keras.ops.mean(keras.losses.categorical_crossentropy(onehot, o, from_logits=True))
          for o in _keras_outputs(out)]
    return ce[0] + aux_weight * sum(ce[1:]), new_nt

  (kloss, new_non_trainable), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
      trainable)
  sgd = keras.optimizers.SGD(learning_rate=lr)
  sgd.build(kmodel.trainable_variables)
  new_trainable, _ = sgd.stateless_apply([v.value for v in sgd.variables], grads, trainable)
  return kloss, trainable, new_trainable, new_non_trainable


def _compare_sgd_updates(name, kmodel, paths, trainable, new_trainable, new_params):
  """Asserts digitjax's new weights and its update (new - old) equal Keras's, leaf by
  leaf; returns the largest new-weight difference and update difference / scale.

  The step itself, lr * grad, is small against the weights, so the new weights alone
  would hide a wrong gradient: the update is compared on its own scale too. It is a
  difference of float32 weights, exact only to their rounding (a few ulps of the largest
  weight), hence a tolerance relative to the leaf's largest update plus that rounding,
  not an elementwise rtol."""
  where = {id(v): p for v, p in paths}
  weights = updates = 0.0
  for v, old, new in zip(kmodel.trainable_variables, trainable, new_trainable):
    collection, path = where[id(v)]
    assert collection == "params"
    ours = keras_pairs.get(new_params, path)
    weights = max(weights, _close(ours, new, f"{name} new {path}"))
    ours_update, keras_update = np.asarray(ours - old), np.asarray(new - old)
    scale = float(np.max(np.abs(keras_update)))
    assert scale > 0, (name, path)  # every weight receives a gradient
    rounding = 4 * np.finfo(np.float32).eps * float(np.max(np.abs(np.asarray(old))))
    err = float(np.max(np.abs(ours_update - keras_update)))
    assert err <= 1e-3 * scale + rounding, (name, path, err, scale)
    updates = max(updates, err / scale)
  return weights, updates


SLOW_STEP = [pytest.param(n, marks=pytest.mark.slow) if n == "googlenet" else n
             for n in NAMES if n not in keras_pairs.V7]  # the SGD rows (E6 trains with Adam)


@pytest.mark.parametrize("name", SLOW_STEP)
def test_one_sgd_step_equals_keras(name, no_dropout):
  c, model, variables, kmodel, paths, images, labels = keras_pairs.case(name)
  _keras_no_dropout(kmodel)
  assert c.optimizer.name == "sgd"  # at the row's rate: 0.001 (E2, E4, E5) or 0.01
  assert not any(c.augment.values()) and c.loss == "cross_entropy"
  lr = optim.learning_rate(c)
  aux_weight = models.settings(c.model).get("aux_weight", 0.0)  # GoogLeNet's own field

  # digitjax: its own train step on uint8 images.
  tx = optim.make(c, 1)
  params, batch_stats = variables["params"], variables.get("batch_stats", {})
  state = steps.TrainState(step=jnp.zeros((), jnp.int32), params=params,
                           batch_stats=batch_stats, opt_state=tx.init(params),
                           plateau=optim.plateau(c).init(params))
  step = jax.jit(functools.partial(steps.train_step, model=model, tx=tx, config=c))
  new_state, metrics = step(state, jnp.asarray(images), jnp.asarray(labels),
                            jax.random.key(2))
  assert bool(metrics["finite"])

  kloss, trainable, new_trainable, new_non_trainable = _keras_sgd_step(
      name, kmodel, images, labels, lr, aux_weight)
  loss_diff = _close(metrics["loss"], kloss, f"{name} loss", rtol=1e-5, atol=0)
  weights, updates = _compare_sgd_updates(name, kmodel, paths, trainable, new_trainable,
                                           new_state.params)
  bn, _ = _compare_bn(name, kmodel, paths, new_non_trainable, new_state.batch_stats)
  print(f"{name} SGD step: loss {float(kloss):.4f} (diff {loss_diff:.1e}), max |new weight "
        f"diff| {weights:.2e}, max update diff / update scale {updates:.1e}, "
        f"BN stats {bn:.2e}")
