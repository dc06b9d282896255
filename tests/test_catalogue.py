"""Every config of every report builds and trains one step.

One training step per distinct train step runs at --quick sizes
(experiments.reproduce.runner.quick: the big 224-px networks at the smallest input they take)
on random uint8 images, through the real Trainer (the jitted step with augmentation).
Configs that differ from a stepped one only in what the loop does around the step
(epochs, early stopping, plateau, splits, name) share its step; so do the optimizer
variants of E2-E5 with their rates (every optimizer itself steps in test_optim) and VGG16
hand-written vs keras.applications (same layers, checked; their input scales differ, and
tests/test_keras_equivalence steps E4's own). Each sharing is asserted, so a variant that
starts to differ in anything else fails until it gets its own step. The reproduce runner
that trains these rows and tabulates them: test_reproduce.
"""
import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT
from digitjax import config as config_lib
from digitjax import validation
from digitjax import data, main, trainer as trainer_lib
from experiments.reproduce import catalogue, runner


def _variants(report):
  spec = importlib.util.spec_from_file_location("r", ROOT / "configs" / f"report_{report}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return [f"configs/report_{report}.py:{v}" for v in module.VARIANTS]


ALL_SPECS = ([s for r in "abcde" for s in _variants(r)]
             + ["configs/cnn_bn.py", "configs/cnn_bn_plus.py"])
# Fields the compiled train step does not depend on (the loop, the data split, names).
LOOP_FIELDS = ("name", "num_epochs", "early_stopping", "reduce_on_plateau", "monitor",
               "eval_batch_size", "log_every_steps", "checkpoint_every_steps",
               "checkpoint_every_epochs", "steps_per_dispatch",  # same step, see test_train
               "dataset.train_split", "dataset.test_split", "dataset.validation_split",
               "dataset.validation_fraction")
# E2-E5's optimizer variants (with the rates the notebooks set); E3 and E4 also differ in
# the input's Rescaling, a layer test_models covers
OPTIMIZER = ("optimizer.name", "optimizer.learning_rate")
SHARED_FIELDS = {"_alexnet_": OPTIMIZER, "_googlenet_": OPTIMIZER,
                 "_vgg16_": (*OPTIMIZER, "model.input_scale", "model.input_offset")}
# (_vgg16_ matches _vgg16_app_ too)


def _step_key(spec):
  """The quick config's fields that shape its train step, as a comparable dict."""
  d = config_lib.flatten(runner.quick(catalogue.load_config(spec)).to_dict())
  ignored = LOOP_FIELDS + next((v for k, v in SHARED_FIELDS.items() if k in spec), ())
  d = {k: v for k, v in d.items() if not any(k == f or k.startswith(f + ".") for f in ignored)}
  if d["model.name"] == "vgg16_app":
    d["model.name"] = "vgg16"  # same layers (test_vgg16_app_has_the_layers_of_vgg16)
  return d


def _groups():
  groups = []  # [(stepped spec, [specs sharing its step])]
  for spec in sorted(ALL_SPECS, key=lambda s: (not s.endswith("_sgd"), "_app_" in s, s)):
    key = _step_key(spec)
    for stepped, members in groups:
      if _step_key(stepped) == key:
        members.append(spec)
        break
    else:
      groups.append((spec, []))
  return groups


GROUPS = _groups()
STEPPED = [g[0] for g in GROUPS]
SHARING = [(m, g[0]) for g in GROUPS for m in g[1]]


def test_every_row_of_the_catalogue_has_a_valid_config():
  ids = [r.id for r in catalogue.ROWS]
  assert len(ids) == len(set(ids))
  assert {r.report for r in catalogue.ROWS} == set("ABCDE")
  for row in catalogue.ROWS:
    assert row.config in ALL_SPECS, row
    assert row.metric in ("test", "val") and row.epochs >= 1
    c = catalogue.load_config(row.config)
    assert validation.validate(c) == [], (row.id, validation.validate(c))
    assert c.num_epochs == row.epochs, row.id
    # reproduce, keras_check and the tables read each row's val figures
    assert validation.has_validation(c), row.id


@pytest.mark.parametrize("spec", STEPPED)
def test_config_trains_one_step(spec):
  c = runner.quick(catalogue.load_config(spec))
  assert validation.validate(c) == []
  shape = data.image_shape(c)
  trainer = trainer_lib.Trainer(c, steps_per_epoch=4)
  # The initial state is drawn with the rbg PRNG and built with lax.conv: the step is
  # what is tested, and the state's shapes do not depend on either. Threefry's initial
  # draws compile slowly (GoogLeNet's 128: ~24 s of its init here), and the matmul
  # form's forward, which init traces, compiles more slowly than lax.conv's.
  init = c.copy_and_resolve_references()
  init.model.conv_impl = "xla"
  initializer = trainer_lib.Trainer(init, steps_per_epoch=4)
  initializer.init_keys = jax.random.split(jax.random.key(c.seed, impl="rbg"), 1)
  state = initializer.init_state()
  before = [np.asarray(p).copy() for p in jax.tree.leaves(state.params)]
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (c.batch_size, *shape), dtype=np.uint8)
  labels = rng.integers(0, trainer.info.num_classes, c.batch_size).astype(np.int32)
  order = jnp.arange(c.batch_size)[None, None]  # (replicas, steps, batch)
  state, m = trainer.train_steps(state, images, labels, order, 0, 1,
                           trainer.replicate(np.array([True])))
  assert bool(m["finite"][0][0]) and np.isfinite(float(m["loss"][0][0]))  # (steps, seeds)
  assert int(state.step[0]) == 1
  after = jax.tree.leaves(state.params)
  assert any(not np.array_equal(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("spec,stepped", SHARING)
def test_config_shares_a_stepped_configs_train_step(spec, stepped):
  assert validation.validate(catalogue.load_config(spec)) == []
  assert _step_key(spec) == _step_key(stepped)
  assert spec in ALL_SPECS and stepped in STEPPED


def test_every_config_is_stepped_or_shares_a_step():
  assert sorted(STEPPED + [m for m, _ in SHARING]) == sorted(ALL_SPECS)
  assert len(STEPPED) < len(ALL_SPECS)


def test_vgg16_app_has_the_layers_of_vgg16():
  from digitjax import models
  shapes = []
  for spec in ("configs/report_e.py:e3_vgg16_sgd", "configs/report_e.py:e4_vgg16_app_sgd"):
    c = runner.quick(catalogue.load_config(spec))
    model = models.build(c, 5)
    v = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))
    # both name their layers so that sorted names follow the layer order
    shapes.append([l.shape for l in jax.tree.leaves(v["params"])])
  assert shapes[0] == shapes[1]


@pytest.mark.parametrize("spec,shape", [
    ("configs/report_d.py:d3_cifar_net1_adam", (32, 32, 3)),
    ("configs/report_e.py:e1_flowers_base_v1", (150, 150, 3)),
])
def test_rows_without_local_data_run_on_mock_data_at_real_size(tmp_path, spec, shape,
                                                             no_prepared_data):
  c = catalogue.load_config(spec)
  c.num_epochs, c.batch_size, c.eval_batch_size = 1, 16, 32
  c.dataset.max_train_examples, c.dataset.max_test_examples = 48, 32
  with runner.mock_tfds(num_examples=48):
    r = main.run(c, str(tmp_path))
  assert data.image_shape(c) == shape
  assert r["epochs_run"] == 1 and 0 <= r["test_accuracy"] <= 1
  assert f"(None, {shape[0] - 2}, {shape[1] - 2}," in (tmp_path / "summary.txt").read_text() \
      or spec.endswith("v1")  # D3's first conv is 'valid'; E1's are 'same'
