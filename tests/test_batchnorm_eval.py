"""experiments.batchnorm_eval: re-estimated BatchNorm statistics and the val accuracy three ways."""
import json

import jax
import numpy as np
import pytest

from conftest import npz_data, tiny_config
from digitjax import config as config_lib, main, models
from experiments import batchnorm_eval


def _bn_config():
  """tests/tiny_config.py as a small Conv -> BN -> MaxPool network."""
  c = config_lib.choose_model(tiny_config(), "flowers_cnn")
  c.model.batch_norm, c.model.hidden_units, c.model.filters = True, (16,), (8, 16, 16)
  c.batch_size, c.num_epochs = 50, 1
  return c


@pytest.fixture(scope="module", autouse=True)
def _npz_data(tmp_path_factory):
  with npz_data(tmp_path_factory.mktemp("npz")):
    yield


def test_recalibrated_statistics_are_the_averages_of_the_batch_statistics():
  """The first BatchNorm's re-estimated mean and var are the averages over the batches of
  its input's per-batch mean and (biased) variance, computed here from the conv output."""
  module = models.build(_bn_config(), 10)
  # jitted, as models run (op by op, each matmul conv's slices compile apart)
  variables = jax.jit(module.init)(jax.random.key(0), np.zeros((1, 28, 28, 1), np.float32))
  images = np.random.default_rng(0).uniform(0, 1, (3 * batchnorm_eval.BATCH + 5, 28, 28, 1))
  images = images.astype(np.float32)
  stats = batchnorm_eval.recalibrated(module, variables, images)["batch_stats"]["01_batch_norm"]
  _, inter = jax.jit(lambda v, x: module.apply(v, x, capture_intermediates=True,
                                               mutable=["intermediates"]))(variables, images)
  conv = np.asarray(inter["intermediates"]["00_conv"]["__call__"][0], np.float64)
  batches = conv[:3 * batchnorm_eval.BATCH].reshape(3, batchnorm_eval.BATCH, -1, conv.shape[-1])
  np.testing.assert_allclose(stats["BatchNorm_0"]["mean"], batches.mean((1, 2)).mean(0),
                             rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(stats["BatchNorm_0"]["var"], batches.var((1, 2)).mean(0),
                             rtol=1e-4, atol=1e-7)


def test_running_accuracy_is_what_training_logged_for_the_best_checkpoint(tmp_path):
  main.run(_bn_config(), str(tmp_path))
  logged = [json.loads(line)["val_accuracy"]
            for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  result = batchnorm_eval.compare(str(tmp_path), "best")
  assert result["running"] == pytest.approx(max(logged), abs=1e-6)
  assert 0.0 <= result["per_batch"] <= 1.0 and 0.0 <= result["recalibrated"] <= 1.0


def test_a_model_without_batch_norm_is_one_clear_error(tmp_path, capsys):
  main.run(tiny_config(**{"num_epochs": 1}), str(tmp_path))
  assert batchnorm_eval.main(["--workdir", str(tmp_path)]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and "has no BatchNorm layers" in err
  assert len(err.strip().splitlines()) == 1


def test_a_run_without_a_validation_set_is_one_clear_error(tmp_path):
  from digitjax.errors import UserError

  c = _bn_config()
  c.dataset.validation_fraction = 0.0  # every training image trains: nothing to compare on
  main.run(c, str(tmp_path))
  with pytest.raises(UserError, match="trained with no validation set"):
    batchnorm_eval.compare(str(tmp_path), "best")
