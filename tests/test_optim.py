"""Optimizers with Keras defaults, schedules, plateau, losses, early stopping."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import tiny_config
from digitjax import main, optim, callbacks, steps


@pytest.mark.parametrize("name,lr", [("sgd", 0.01), ("rmsprop", 1e-3), ("adam", 1e-3),
                                     ("adadelta", 1e-3), ("adagrad", 1e-3),
                                     ("momentum", 0.01), ("nesterov", 0.01)])
def test_keras_default_learning_rates_and_every_optimizer_steps(name, lr):
  c = tiny_config(**{"optimizer.name": name})
  assert optim.learning_rate(c) == lr
  tx = optim.make(c, steps_per_epoch=10)
  params = {"w": jnp.ones(3)}
  updates, _ = tx.update({"w": jnp.ones(3)}, tx.init(params), params)
  assert jnp.all(updates["w"] < 0)  # a descent step


@pytest.mark.parametrize("eps_in_sqrt", [True, False])
def test_rmsprop_matches_keras_update_rule(eps_in_sqrt):
  """v = rho v + (1-rho) g^2, eps 1e-7; tf.keras 2 / Keras 3: w -= lr g / sqrt(v + eps),
  standalone Keras 2.2: w -= lr g / (sqrt(v) + eps). The tiny gradient tells them apart
  (its step differs tenfold)."""
  c = tiny_config(**{"optimizer.name": "rmsprop", "optimizer.eps_in_sqrt": eps_in_sqrt})
  tx = optim.make(c, 10)
  g = jnp.array([0.5, -2.0, 1e-4])
  updates, _ = tx.update(g, tx.init(g), g)
  v = 0.1 * g ** 2
  denominator = jnp.sqrt(v + 1e-7) if eps_in_sqrt else jnp.sqrt(v) + 1e-7
  np.testing.assert_allclose(updates, -1e-3 * g / denominator, rtol=1e-5)


def test_schedules():
  c = tiny_config(**{"optimizer.schedule": "cosine", "num_epochs": 2})
  s = optim.schedule(c, steps_per_epoch=10)
  assert s(0) == pytest.approx(1e-3) and s(20) == pytest.approx(0.0, abs=1e-9)
  c = tiny_config(**{"optimizer.schedule": "warmup_cosine", "optimizer.warmup_epochs": 1})
  s = optim.schedule(c, steps_per_epoch=10)
  assert s(0) == 0.0 and s(10) == pytest.approx(1e-3)


def test_onecycle_spans_the_run():
  c = tiny_config(**{"optimizer.name": "adam", "optimizer.learning_rate": 0.01,
                     "optimizer.schedule": "onecycle", "num_epochs": 2})
  s = optim.schedule(c, steps_per_epoch=50)  # 100 steps: the peak at step 0.3 * 100 - 1
  close = lambda x: pytest.approx(x, rel=1e-5)  # float32
  assert float(s(0)) == close(0.01 / 25) and float(s(29)) == close(0.01)
  assert float(s(99)) == close(0.01 / 25 / 1e4)
  assert "onecycle" in optim.RUN_LENGTH_SCHEDULES  # another num_epochs: another curve


@pytest.mark.parametrize("name,keras", [
    ("adam", lambda: optax.adam(1e-3, b1=0.9, b2=0.999, eps=1e-7)),
    ("rmsprop", lambda: optax.rmsprop(1e-3, decay=0.9, eps=1e-7, eps_in_sqrt=True)),
    ("adadelta", lambda: optax.adadelta(1e-3, rho=0.95, eps=1e-7)),
    ("adagrad", lambda: optax.adagrad(1e-3, initial_accumulator_value=0.1, eps=1e-7))])
def test_optimizer_fields_at_their_defaults_are_the_keras_constants(name, keras):
  """beta_1, beta_2 and epsilon at their defaults build the very optimizers the
  constants did, so no config's numbers move."""
  g = jnp.array([0.5, -2.0, 1e-4])

  def two_steps(tx):
    state = tx.init(g)
    first, state = tx.update(g, state, g)
    return first, tx.update(-3 * g, state, g)[0]

  ours, theirs = two_steps(optim.make(tiny_config(**{"optimizer.name": name}), 10)), \
      two_steps(keras())
  for a, b in zip(ours, theirs):
    np.testing.assert_array_equal(a, b)


def test_adam_reads_its_betas_and_epsilon():
  c = tiny_config(**{"optimizer.name": "adam", "optimizer.beta_1": 0.7,
                     "optimizer.beta_2": 0.9, "optimizer.epsilon": 1e-8})
  g = jnp.array([0.5, -2.0, 1e-9])
  tx = optim.make(c, 10)
  state = tx.init(g)
  _, state = tx.update(g, state, g)
  second, _ = tx.update(-3 * g, state, g)
  m = 0.7 * 0.3 * g + 0.3 * -3 * g
  v = 0.9 * 0.1 * g ** 2 + 0.1 * 9 * g ** 2
  expected = -1e-3 * (m / (1 - 0.7 ** 2)) / (jnp.sqrt(v / (1 - 0.9 ** 2)) + 1e-8)
  np.testing.assert_allclose(second, expected, rtol=1e-5)


def test_plateau_halves_after_patience_and_stops_at_min_lr():
  c = tiny_config(**{"reduce_on_plateau.enabled": True, "reduce_on_plateau.factor": 0.5,
                     "reduce_on_plateau.patience": 2, "reduce_on_plateau.min_lr": 2.5e-4})
  tx = optim.plateau(c)
  state = tx.init({})
  scales = []
  for value in [1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]:
    _, state = tx.update({}, state, value=jnp.asarray(value))
    scales.append(float(state.scale))
  assert scales[:3] == [1.0, 1.0, 1.0] and scales[3] == 0.5
  assert min(scales) == 0.25  # 2.5e-4 / 1e-3


def test_sigmoid_cross_entropy_is_keras_normalised_sigmoid():
  logits = jnp.array([[2.0, -1.0, 0.5]])
  s = jax.nn.sigmoid(logits)
  expected = -jnp.log(s[0, 2] / s.sum())
  got = steps.compute_loss(logits, jnp.array([2]), "cross_entropy", "sigmoid")
  np.testing.assert_allclose(got[0], expected, rtol=1e-6)
  mse = steps.compute_loss(logits, jnp.array([2]), "mse", "softmax")
  p = jax.nn.softmax(logits)[0]
  np.testing.assert_allclose(mse[0], jnp.mean((jnp.array([0, 0, 1.0]) - p) ** 2), rtol=1e-6)


def test_loss_clip_is_keras_22_clipped_cross_entropy():
  """Clipped like Keras 2.2: the same loss inside [clip, 1 - clip], no gradient outside."""
  logits = jnp.array([[2.0, -1.0, 0.5], [30.0, 0.0, 0.0]])
  labels = jnp.array([2, 1])  # the second example's true class has probability ~1e-13
  exact = steps.compute_loss(logits, labels, "cross_entropy", "softmax")
  clipped = steps.compute_loss(logits, labels, "cross_entropy", "softmax", clip=1e-7)
  np.testing.assert_allclose(clipped[0], exact[0], rtol=1e-6)
  np.testing.assert_allclose(clipped[1], -np.log(np.float32(1e-7)), rtol=1e-6)
  assert exact[1] > 29
  grad = jax.grad(lambda l: steps.compute_loss(l, labels, "cross_entropy", "softmax",
                                               clip=1e-7).sum())(logits)
  np.testing.assert_allclose(grad[1], 0.0)
  np.testing.assert_allclose(grad[0], jax.nn.softmax(logits[0]) - jnp.array([0, 0, 1.0]),
                             rtol=1e-5)
  sig = steps.compute_loss(logits[:1], labels[:1], "cross_entropy", "sigmoid", clip=1e-7)
  np.testing.assert_allclose(
      sig, steps.compute_loss(logits[:1], labels[:1], "cross_entropy", "sigmoid"), rtol=1e-6)


def test_early_stopping_stops_and_tests_the_best_epoch(tmp_path, mock_mnist):
  # Mock data's labels are random: a wide MLP at lr 0.01 memorises the 540 training
  # images and val_loss rises soon after its minimum.
  c = tiny_config(**{"early_stopping.enabled": True, "early_stopping.patience": 1,
                     "num_epochs": 30, "optimizer.learning_rate": 0.01,
                     "model.hidden_units": (256,)})
  r = main.run(c, str(tmp_path))
  (seed,) = r["per_seed"]
  assert seed["stopped_early"] and seed["epochs_run"] < 30
  assert seed["epochs_run"] == seed["best_epoch"] + 1


def _track(values, **es):
  config = tiny_config(**{f"early_stopping.{k}": v for k, v in es.items()})
  meta = callbacks.LoopState.fresh(1)
  out = [callbacks.track_best(meta, 0, epoch, v, "val_loss", config.early_stopping)
         for epoch, v in enumerate(values, 1)]
  return meta, out


def test_best_epoch_is_keras_restore_best_weights_under_min_delta():
  # Epochs 3 and 4 beat epoch 2 by less than min_delta: Keras keeps epoch 2's weights
  # and counts 3, 4 and 5 against patience, so it stops at 5 and restores epoch 2.
  values = [0.100, 0.090, 0.0895, 0.0891, 0.095]
  meta, out = _track(values, enabled=True, patience=3, min_delta=1e-3)
  assert meta.best_epoch == [2] and meta.best == [0.090]
  assert [stop for _, stop in out] == [False, False, False, False, True]
  # Without early stopping the best checkpoint is simply the lowest val_loss (epoch 4).
  meta, out = _track(values, enabled=False)
  assert meta.best_epoch == [4] and not any(stop for _, stop in out)
