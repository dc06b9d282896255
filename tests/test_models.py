"""Report E's families: Keras's parameter counts at full size, GoogLeNet's aux heads.

Reference counts come from Keras 3 itself (experiments/keras/models.py builds the same
layers with keras.applications / keras.layers and prints count_params()). Counting uses
models.summary, i.e. jax.eval_shape: no FLOPs, so full 224x224 models cost nothing.
"""
import jax
import jax.numpy as jnp
import pytest

from digitjax import data, models
from experiments.reproduce import catalogue


def _summary(spec, image_size=None):
  c = catalogue.load_config(spec)
  if image_size:
    c.dataset.image_size = image_size
  shape = data.image_shape(c)
  return models.summary(models.build(c, 5), shape, c.model.name)


# (config, total, trainable): numbers printed by experiments/keras/models.py (Keras 3.15).
@pytest.mark.parametrize("spec,total,trainable", [
    ("configs/report_e.py:e4_vgg16_app_sgd", 134_281_029, 134_281_029),  # 224, as Keras says
    ("configs/report_e.py:e3_vgg16_sgd", 65_075_013, 65_075_013),  # 150x150: 4x4x512 map
    ("configs/report_e.py:e2_alexnet_sgd", 29_995_781, 29_993_029),  # BN moving stats
    ("configs/report_e.py:e5_googlenet_sgd", 8_483_647, 8_483_647),  # 224, both aux heads
    ("configs/report_e.py:e1_flowers_base_v1", 2_678_565, 2_678_565),
    ("configs/report_e.py:e6_v7_step0", 4_828_997, 4_828_997),
    ("configs/report_e.py:e6_v7_step1", 1_175_493, 1_175_493),
    ("configs/report_e.py:e6_v7_step2", 158_309, 158_309),
    ("configs/report_e.py:e6_v7_step3", 382_757, 382_757),
    ("configs/report_e.py:e6_v7_step4", 373_957, 373_253),
    ("configs/report_e.py:e6_v7_step5", 373_957, 373_253),  # augmentation adds no weights
])
def test_report_e_param_counts_equal_keras(spec, total, trainable):
  text, totals = _summary(spec)
  assert (totals["total"], totals["trainable"]) == (total, trainable)
  assert f"Total params: {total:,}" in text


def test_googlenet_at_150_equals_keras():
  """E5 at 224 (above): the KhuyenLE notebook report E took prints 10,523,397 there with
  1000-class main and aux-2 heads, 2 x (1,025,000 - 5,125) more. At 150 the aux heads'
  maps are 2x2, not 3x3: Keras's count, and the one the 'valid' stem must give (the
  Analytics Vidhya layout, 'same' stem pools, has this count at 150 too but 10,318,655 at
  224)."""
  _, totals = _summary("configs/report_e.py:e5_googlenet_sgd", image_size=150)
  assert totals["total"] == 7_172_927


def test_vgg16_app_summary_reads_like_keras():
  text, _ = _summary("configs/report_e.py:e4_vgg16_app_sgd")
  lines = text.splitlines()
  assert next(l for l in lines if l.startswith("block1_conv1")).split()[-1] == "1,792"
  assert "(None, 7, 7, 512)" in next(l for l in lines if l.startswith("block5_pool"))
  names = [l.split()[0] for l in lines if l.startswith(("block", "flatten", "fc", "pred"))]
  assert names[-4:] == ["flatten", "fc1", "fc2", "predictions"]
  assert next(l for l in lines if l.startswith("fc1")).split()[-1] == "102,764,544"


def test_googlenet_summary_lists_blocks_in_call_order_and_adds_up():
  text, totals = _summary("configs/report_e.py:e5_googlenet_sgd")
  rows = [l.split() for l in text.splitlines() if l[:1].islower() and "(None" in l]
  names = [r[0] for r in rows]
  # E5 feeds raw pixels: digitjax's [0, 1] images times 255 first
  assert names[:4] == ["rescaling", "conv_1_7x7_2", "max_pool_1_3x3_2", "conv_2a_1x1_1"]
  assert names.index("inception_4a") < names.index("aux_1") < names.index("inception_4b")
  assert names.index("inception_4d") < names.index("aux_2") < names.index("inception_4e")
  assert names[-1] == "output"
  assert sum(int(r[-1].replace(",", "")) for r in rows) == totals["total"]
  assert "(None, 12, 12, 512)" in next(l for l in text.splitlines() if "inception_4a" in l)


def _googlenet(size=99):  # the smallest input the aux heads accept
  c = catalogue.load_config("configs/report_e.py:e5_googlenet_sgd")
  return models.build(c, 5), jnp.zeros((2, size, size, 3))


def test_googlenet_sows_aux_logits_in_training_only():
  model, x = _googlenet()
  rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
  variables = jax.eval_shape(lambda: model.init(rngs, x))
  assert {"aux_1", "aux_2", "output"} <= set(variables["params"])  # built even at init
  out, state = jax.eval_shape(
      lambda v: model.apply(v, x, train=True, rngs=rngs, mutable=["aux"]), variables)
  aux = jax.tree.leaves(state["aux"])
  assert out.shape == (2, 5) and [a.shape for a in aux] == [(2, 5), (2, 5)]
  _, state = jax.eval_shape(lambda v: model.apply(v, x, train=False, mutable=["aux"]),
                            variables)
  assert not jax.tree.leaves(state.get("aux", {}))


def test_aux_logits_join_the_training_loss_with_aux_weight_and_not_eval():
  """train_step's loss = main + the model's aux_weight * sum(aux losses); eval_step: main
  only."""
  import flax.linen as nn
  import numpy as np
  from conftest import tiny_config
  from digitjax import optim, steps

  class TwoHeads(nn.Module):
    aux_weight: float = 0.0

    @nn.compact
    def __call__(self, x, train=False):
      x = x.reshape(x.shape[0], -1)
      aux = nn.Dense(3, name="aux")(x)
      if train:
        self.sow("aux", "logits", aux)
      return nn.Dense(3, name="main")(x)

  model = TwoHeads()
  c = tiny_config()
  x = jax.random.uniform(jax.random.key(0), (4, 2, 2, 1))
  images = (x * 255).astype(jnp.uint8)
  labels = jnp.array([0, 1, 2, 1])
  params = model.init(jax.random.key(1), x)["params"]
  ce = lambda logits: steps.compute_loss(logits, labels, "cross_entropy", "softmax").mean()
  scaled = images.astype(jnp.float32) / 255.0
  main_loss = ce(model.apply({"params": params}, scaled))
  aux_loss = ce(nn.Dense(3).apply({"params": params["aux"]}, scaled.reshape(4, -1)))
  for weight in (0.0, 0.3):
    model = TwoHeads(aux_weight=weight)
    tx = optim.make(c, 1)
    state = steps.TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats={},
                             opt_state=tx.init(params),
                             plateau=optim.plateau(c).init(params))
    step = jax.jit(lambda *a: steps.train_step(*a, model=model, tx=tx, config=c))
    _, m = step(state, images, labels, jax.random.key(2))  # jitted: op by op is slow
    np.testing.assert_allclose(m["loss"], main_loss + weight * aux_loss, rtol=1e-5)
  out, _ = jax.jit(lambda *a: steps.eval_step(*a, model=model, config=c))(
      params, {}, images, labels, jnp.ones(4))
  np.testing.assert_allclose(out["loss"], 4 * main_loss, rtol=1e-5)
