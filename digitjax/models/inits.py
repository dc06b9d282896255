"""How a model's initial parameters are drawn: config.model.init.

"keras" (the default) keeps each layer's own Keras initialiser (glorot-uniform kernels,
zero biases, he_normal where a family asks for it). "torch" redraws every kernel and
bias as PyTorch's Conv2d and Linear draw them, for recipes written in PyTorch
(configs/speedrun_mnist.py): its one-epoch schedule is tuned to that init, and Keras's
glorot init with zero biases trains slower there.
"""
from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np

INITS = ("keras", "torch")


def torch_init(params, key):
  """PyTorch's default init for Conv2d and Linear: kaiming_uniform(a=sqrt(5)) kernels
  and uniform biases, both uniform in +-1/sqrt(fan_in) (fan_in = k*k*C_in or inputs).

  Every layer holding a "kernel" is redrawn (its bias too), with a key folded from its
  position among its siblings in sorted order; other parameters (BatchNorm's scale and
  bias, which PyTorch also starts at 1 and 0) are kept; nested modules are walked.
  """
  out = {}
  for i, (name, layer) in enumerate(sorted(params.items())):
    sub = jax.random.fold_in(key, i)
    if not isinstance(layer, Mapping):
      out[name] = layer
    elif "kernel" not in layer:
      out[name] = torch_init(layer, sub)
    else:
      kernel = layer["kernel"]
      bound = 1.0 / np.sqrt(np.prod(kernel.shape[:-1]))
      kk, kb = jax.random.split(sub)
      draw = lambda k, a: jax.random.uniform(k, a.shape, a.dtype, -bound, bound)
      out[name] = dict(layer, kernel=draw(kk, kernel))
      if "bias" in layer:
        out[name]["bias"] = draw(kb, layer["bias"])
  return out


def initialize(params, key, init: str):
  """params as config.model.init wants them; key is the model's init key (only "torch"
  draws from it, from a key of its own folded in, so "keras" draws nothing more)."""
  if init == "torch":
    return torch_init(params, jax.random.fold_in(key, 1))
  return params
