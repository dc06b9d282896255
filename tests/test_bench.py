"""The benchmark's machinery: vmapped seeds equal sequential runs; FLOP counting; the
reference layers."""
import contextlib

import jax
import numpy as np
import pytest

from conftest import needs_mnist
from experiments.perf import bench, reference_layers, seed_timing, speedrun_vs_torch, torch_keras


@pytest.mark.parametrize("name,hidden,dropout", [("perceptron", None, 0.0),
                                                 ("mlp", (32, 16), 0.2)])
def test_vmapped_seeds_equal_sequential_runs(name, hidden, dropout):
  c = bench.model_config("perceptron" if name == "perceptron" else "keras_mlp", 32)
  if hidden:
    c.model.hidden_units, c.model.dropout = hidden, dropout
  images, labels = bench.synthetic(256)
  images, labels = jax.device_put(images), jax.device_put(labels)
  trainers = seed_timing.seed_trainers(c, 3, len(labels) // 32)
  vstate = seed_timing.run_vmapped(trainers, images, labels, epoch=1, steps=4)
  sequential = seed_timing.run_sequential(trainers, images, labels, epoch=1, steps=4)
  for k, s in enumerate(sequential):
    assert int(s.step[0]) == int(vstate.step[k]) == 4
    for a, b in zip(jax.tree.leaves(s.params), jax.tree.leaves(vstate.params)):
      np.testing.assert_allclose(b[k], a[0], rtol=1e-5, atol=1e-6)
  # the seeds really differ (own init, data order and dropout keys)
  first = jax.tree.leaves(vstate.params)[0]
  assert not np.allclose(first[0], first[1])


def test_counted_flops_match_the_published_counts():
  from digitjax import trainer as trainer_lib
  flops = {n: bench.counted_flops(trainer_lib.Trainer(bench.model_config(n, 128), 1))
           for n in ("keras_mlp", "keras_cnn")}
  assert flops["keras_mlp"] == pytest.approx(4.01e6, rel=1e-3)   # ../shared/BENCHMARKS.md
  assert flops["keras_cnn"] == pytest.approx(71.95e6, rel=1e-3)


def test_counted_flops_reach_layers_inside_submodules_and_training_only_branches():
  """GoogLeNet's convs sit inside its inception modules and its auxiliary heads run in
  training only: counting top-level layers in inference mode gave it 2.7 GFLOP a sample
  of its 7.7."""
  import types
  from flax import linen as nn

  class Block(nn.Module):
    @nn.compact
    def __call__(self, x):
      return nn.Conv(4, (3, 3))(x)  # 'SAME': 8 x 8 outputs of 3*3*2 x 4 MACs

  class Net(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
      x = Block()(x)
      x = x.reshape(x.shape[0], -1)
      if train or self.is_initializing():  # like an auxiliary head: built always, run
        self.sow("aux", "logits", nn.Dense(5, name="aux")(x))  # in training only
      return nn.Dense(3, name="out")(x)

  trainer = types.SimpleNamespace(model=Net(), input_shape=(8, 8, 2))
  macs = 8 * 8 * 3 * 3 * 2 * 4 + 256 * 5 + 256 * 3
  assert bench.counted_flops(trainer) == 6.0 * macs


def test_bench_times_blocks_of_steps_per_dispatch(tmp_path):
  """--dispatch K adds a row timed the way config.steps_per_dispatch=K trains (blocks of
  K steps in one lax.scan, the last block shorter) and its speed ratio to one per call."""
  out = tmp_path / "bench.json"
  r = bench.main(["--models", "keras_mlp", "--steps", "6", "--repeats", "1", "--seeds", "0",
                  "--dispatch", "4", "--out", str(out)])
  models = [row["model"] for row in r["rows"]]
  assert models == ["keras_mlp", "keras_mlp (4 per dispatch)"]
  assert [row["dispatch"] for row in r["rows"]] == [1, 4]
  assert all(row["epoch_s"] > 0 and row["steps_timed"] == 6 for row in r["rows"])
  assert r["dispatch_speedups"]["keras_mlp"] == pytest.approx(
      r["rows"][0]["epoch_s"] / r["rows"][1]["epoch_s"])
  assert out.exists()


def test_unknown_model_is_a_usage_error(capsys):
  with pytest.raises(SystemExit) as exit_:
    bench.main(["--models", "keras_cnn,nosuch"])
  assert exit_.value.code == 2
  assert "--models: unknown nosuch; choose from keras_mlp" in capsys.readouterr().err


@needs_mnist
def test_bench_speedrun_times_digitjax_and_pytorch_side_by_side():
  """--compare's speedrun: the same recipe in both frameworks, seconds and accuracy per
  seed, and the ratio of the medians (here on a 1,000-image slice)."""
  pytest.importorskip("torch")
  r = speedrun_vs_torch.time_both(2, limit=1000)
  assert len(r["seconds"]) == len(r["torch_seconds"]) == 2
  assert r["train_images"] == 1000 and r["compile_s"] > 0
  assert all(20 < a <= 100 for a in r["accuracy"] + r["torch_accuracy"])  # chance: 10
  assert r["ratio"] == pytest.approx(np.median(r["torch_seconds"]) / np.median(r["seconds"]))
  assert "torch/ours" in speedrun_vs_torch.line(r)


def _digitjax_params(name):
  from digitjax import models
  model = models.build(bench.model_config(name, 8), 10)
  return models.summary(model, (28, 28, 1))[1]["trainable"]  # shapes only, no FLOPs


@pytest.mark.parametrize("name", list(torch_keras.SPECS))
def test_compared_pytorch_networks_are_digitjaxs(name):
  """--compare's ratios are fair only if each framework trains the same network: the
  PyTorch twin has digitjax's trainable parameter count (BatchNorm's moving statistics
  apart). (Keras's twins build their weights op by op, ~7 s each here, so the suite
  builds only the one it times below.)"""
  pytest.importorskip("torch")
  ours = _digitjax_params(name)
  assert sum(p.numel() for p in torch_keras._torch_model(name).parameters()) == ours


def test_keras_times_a_window_of_training_on_jax():
  images, labels = bench.synthetic(64)
  seconds, backend = torch_keras.keras_epoch_seconds("keras_mlp", images, labels, 8, 2, 1)
  assert seconds > 0 and backend == "jax"


def test_pytorch_times_a_window_of_training():
  pytest.importorskip("torch")
  images, labels = bench.synthetic(64)
  seconds, threads = torch_keras.torch_epoch_seconds("keras_mlp", images, labels, 8, 2, 1)
  assert seconds > 0 and threads >= 1


def test_reference_layers_are_flaxs_stock_forms_inside_the_block_only():
  """bench --reference-layers: the same model, trained to the same numbers, with
  nn.max_pool, nn.Dropout and a conv without fusion boundary; programs traced outside the
  block, and digitjax's own registries, are left as they were."""
  from digitjax import train
  from digitjax.models import fast_ops, layers

  before = (dict(layers.LAYERS), fast_ops.materialize)
  config = bench.model_config("keras_cnn", 8)  # convs, a max-pool, two dropouts
  images, labels = (jax.device_put(a) for a in bench.synthetic(32))

  def one_step(reference):
    with reference_layers.reference_layers() if reference else contextlib.nullcontext():
      trainer = train.Trainer(config, 4)
      args = (trainer.init_state(), images, labels, trainer.epoch_order(0, 32, 8), np.int32(0),
              trainer.step_keys, trainer.replicate(np.array([True])))
      text = trainer.train_block.lower(*args, n=1).as_text()
      state, _ = trainer.train_block(*args, n=1)
    return text, state

  ours_text, ours = one_step(False)
  stock_text, stock = one_step(True)
  assert "reduce_window" in stock_text and "reduce_window" not in ours_text  # nn.max_pool
  for a, b in zip(jax.tree.leaves(ours.params), jax.tree.leaves(stock.params)):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
  assert (dict(layers.LAYERS), fast_ops.materialize) == before
