"""Data augmentation on the device, inside the jitted train step, seeded per step.

Images arrive as float32 in [0, 1], (N, H, W, C); the key is the step's augmentation key,
so the same seed and step always give the same augmented batch.
"""
from __future__ import annotations

import jax


def apply(x, key, cfg):
  """Applies every augmentation enabled in cfg (config.augment)."""
  if cfg.noise_std:
    x = x + cfg.noise_std * jax.random.normal(key, x.shape, x.dtype)
  return x
