"""On-device augmentation: shapes, determinism, identities, and the geometry itself."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from digitjax import augment
from digitjax import config as base
from digitjax import validation


def _cfg(**fields):
  c = base.get_config().augment
  for k, v in fields.items():
    c[k] = v
  return c


def _batch(n=4, h=12, w=12, c=3, seed=0):
  return jax.random.uniform(jax.random.key(seed), (n, h, w, c), jnp.float32)


ALL = dict(rotation_range=20.0, zoom_range=0.2, width_shift_range=0.1,
           height_shift_range=0.1, horizontal_flip=True, vertical_flip=True, noise_std=0.1)


def test_shapes_dtypes_and_determinism_under_jit():
  x = _batch(h=12, w=10)
  f = jax.jit(lambda x, k: augment.apply(x, k, _cfg(**ALL)))
  a, b = f(x, jax.random.key(3)), f(x, jax.random.key(3))
  c = f(x, jax.random.key(4))
  assert a.shape == x.shape and a.dtype == x.dtype
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)
  assert not np.allclose(a, x)


def test_all_ranges_zero_is_identity():
  x = _batch()
  np.testing.assert_array_equal(augment.apply(x, jax.random.key(0), _cfg()), x)


def test_affine_with_neutral_parameters_is_identity():
  x = _batch()[0]
  np.testing.assert_allclose(augment.affine(x, 0.0, 1.0, 1.0, 0.0, 0.0), x, atol=1e-6)


@pytest.mark.parametrize("size", [9, 10])
def test_rotation_by_90_degrees_is_rot90(size):
  x = _batch(h=size, w=size)[0]
  out = augment.affine(x, jnp.pi / 2, 1.0, 1.0, 0.0, 0.0)
  np.testing.assert_allclose(out, jnp.rot90(x, k=1, axes=(0, 1)), atol=1e-5)
  out = augment.affine(x, -jnp.pi / 2, 1.0, 1.0, 0.0, 0.0)
  np.testing.assert_allclose(out, jnp.rot90(x, k=-1, axes=(0, 1)), atol=1e-5)


def test_integer_shift_moves_content_and_fills_with_the_edge():
  x = _batch(h=8, w=8)[0]
  out = augment.affine(x, 0.0, 1.0, 1.0, 0.0, 2.0)  # read 2 pixels to the right
  np.testing.assert_allclose(out[:, :6], x[:, 2:], atol=1e-6)
  np.testing.assert_allclose(out[:, 6:], jnp.repeat(x[:, 7:8], 2, axis=1), atol=1e-6)


def test_zoom_out_shrinks_a_centred_square():
  x = jnp.zeros((21, 21, 1)).at[6:15, 6:15].set(1.0)  # a 9x9 square
  out = augment.affine(x, 0.0, 1.5, 1.5, 0.0, 0.0)  # Keras zoom factor 1.5: content 2/3
  assert float(out.sum()) == pytest.approx(81 / 1.5 ** 2, rel=0.2)


def test_flip_mirrors_some_images_and_leaves_the_others():
  x = _batch(n=16)
  out = augment.apply(x, jax.random.key(1), _cfg(horizontal_flip=True))
  flipped = [bool(np.allclose(o, xi[:, ::-1])) for o, xi in zip(out, x)]
  same = [bool(np.allclose(o, xi)) for o, xi in zip(out, x)]
  assert all(f != s for f, s in zip(flipped, same))  # each image one or the other
  assert 0 < sum(flipped) < 16


def test_vertical_flip_mirrors_top_bottom_independently_of_the_horizontal():
  x = _batch(n=16)
  out = augment.apply(x, jax.random.key(1), _cfg(vertical_flip=True))
  flipped = [bool(np.allclose(o, xi[::-1])) for o, xi in zip(out, x)]
  same = [bool(np.allclose(o, xi)) for o, xi in zip(out, x)]
  assert all(f != s for f, s in zip(flipped, same)) and 0 < sum(flipped) < 16
  both = augment.apply(x, jax.random.key(1), _cfg(horizontal_flip=True, vertical_flip=True))
  kinds = {next(k for k, f in (("none", lambda a: a), ("h", lambda a: a[:, ::-1]),
                               ("v", lambda a: a[::-1]), ("hv", lambda a: a[::-1, ::-1]))
                if np.allclose(o, f(xi))) for o, xi in zip(both, x)}
  assert len(kinds) >= 3  # the two flips drawn apart, not one coin for both


def test_random_rotation_turns_about_the_centre():
  """A centred bright pixel on a dark image never leaves the centre under rotation only."""
  x = jnp.zeros((32, 9, 9, 1)).at[:, 4, 4].set(1.0)
  out = augment.apply(x, jax.random.key(0), _cfg(rotation_range=30.0))
  np.testing.assert_allclose(out[:, 4, 4, 0], 1.0, atol=1e-5)
  # an off-centre pixel moves by a varying angle: the outputs differ between images
  y = jnp.zeros((32, 9, 9, 1)).at[:, 4, 8].set(1.0)
  out = augment.apply(y, jax.random.key(0), _cfg(rotation_range=30.0))
  assert len({tuple(np.round(np.asarray(o).ravel(), 3)) for o in out}) > 10


def test_noise_only_uses_the_step_key_as_before():
  x = _batch()
  key = jax.random.key(5)
  out = augment.apply(x, key, _cfg(noise_std=0.1))
  np.testing.assert_allclose(out, x + 0.1 * jax.random.normal(key, x.shape), atol=1e-7)


@pytest.mark.parametrize("field,value", [("rotation_range", 200.0), ("zoom_range", 1.0),
                                         ("width_shift_range", -0.1),
                                         ("height_shift_range", 1.5)])
def test_out_of_range_augment_fields_are_refused(field, value):
  c = base.get_config()
  c.augment[field] = value
  errors = validation.validate(c)
  assert len(errors) == 1 and f"augment.{field}" in errors[0], errors
