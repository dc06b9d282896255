"""Data augmentation on the device, inside the jitted train step, seeded per step.

Images arrive as float32 in [0, 1], (N, H, W, C); the key is the step's augmentation key,
so the same seed and step always give the same augmented batch.

The affine part is Keras's ImageDataGenerator (rotation_range, zoom_range,
width/height_shift_range, fill_mode='nearest'), done for the whole batch at once: each
output pixel's source position is computed by the inverse affine map of its image, and
read with bilinear interpolation (jax.scipy.ndimage.map_coordinates), vmapped over
images. Then horizontal and vertical flips, then additive noise (report B6). Augmentations whose range
is 0 are not traced at all, so a config without them compiles the step it always had.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy import ndimage


def affine(image, angle, zoom_y, zoom_x, shift_y, shift_x):
  """One (H, W, C) image warped; output pixel p reads input R(angle) Z (p - c) + c + t.

  angle in radians, counter-clockwise as seen on screen (90 degrees == jnp.rot90);
  zoom factors > 1 show more of the image (smaller content), as Keras's zoom_range;
  shifts in pixels. Out-of-image reads take the nearest edge pixel.
  """
  h, w, _ = image.shape
  rows, cols = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32),
                            jnp.arange(w, dtype=jnp.float32), indexing="ij")
  u, v = (rows - (h - 1) / 2) * zoom_y, (cols - (w - 1) / 2) * zoom_x
  cos, sin = jnp.cos(angle), jnp.sin(angle)
  src_rows = cos * u + sin * v + (h - 1) / 2 + shift_y
  src_cols = -sin * u + cos * v + (w - 1) / 2 + shift_x
  warp = lambda channel: ndimage.map_coordinates(channel, [src_rows, src_cols], order=1,
                                                 mode="nearest")
  return jax.vmap(warp, in_axes=-1, out_axes=-1)(image)


def _random_affine(x, key, cfg):
  n, h, w, _ = x.shape
  k_rot, k_zoom, k_shift = jax.random.split(key, 3)
  angle = jnp.deg2rad(cfg.rotation_range) * jax.random.uniform(k_rot, (n,), minval=-1.0)
  zoom = jax.random.uniform(k_zoom, (n, 2), minval=1 - cfg.zoom_range,
                            maxval=1 + cfg.zoom_range)
  fraction = jnp.array([cfg.height_shift_range, cfg.width_shift_range])
  shift = fraction * jnp.array([h, w]) * jax.random.uniform(k_shift, (n, 2), minval=-1.0)
  return jax.vmap(affine)(x, angle, zoom[:, 0], zoom[:, 1], shift[:, 0], shift[:, 1])


def apply(x, key, cfg):
  """Applies every augmentation enabled in cfg (config.augment)."""
  # Noise keeps the step key itself (as before the affine augmentations existed), so runs
  # of noise-only configs keep their exact numbers; the others fold in their own index.
  k_affine, k_flip, k_noise = jax.random.fold_in(key, 1), jax.random.fold_in(key, 2), key
  if cfg.rotation_range or cfg.zoom_range or cfg.width_shift_range or cfg.height_shift_range:
    x = _random_affine(x, k_affine, cfg)
  if cfg.horizontal_flip:
    flip = jax.random.bernoulli(k_flip, 0.5, (x.shape[0], 1, 1, 1))
    x = jnp.where(flip, x[:, :, ::-1, :], x)
  if cfg.vertical_flip:
    flip = jax.random.bernoulli(jax.random.fold_in(key, 3), 0.5, (x.shape[0], 1, 1, 1))
    x = jnp.where(flip, x[:, ::-1, :, :], x)
  if cfg.noise_std:
    x = x + cfg.noise_std * jax.random.normal(k_noise, x.shape, x.dtype)
  return x
