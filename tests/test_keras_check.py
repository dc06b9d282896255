"""experiments/keras/check.py: a report row trained in Keras itself, on digitjax's splits."""
import pytest

from conftest import mock_data, needs_mnist
from digitjax import optim
from experiments.keras import check as keras_check


@needs_mnist
def test_keras_trains_b3_on_the_rows_splits_and_repeats_itself():
  row, config, splits = keras_check.load_row("B3", limit=2000)
  (x, y), (xv, _), (xt, _) = splits
  assert x.shape[1:] == (28, 28, 1) and 0.0 <= x.min() and x.max() <= 1.0
  assert len(y) + len(xv) == 2000 and len(xt) == 2000  # the config's 10% val, carved out
  a = keras_check.train_row(row, config, splits, seed=0, epochs=2)
  b = keras_check.train_row(row, config, splits, seed=0, epochs=2)
  assert a["epochs"] == 2 and len(a["test_curve"]) == 2
  assert a["test_accuracy"] > 0.85  # it learns: chance is 0.10
  assert a["best_test_accuracy"] == max(a["test_curve"])
  assert {k: a[k] for k in ("train_accuracy", "val_accuracy", "test_curve")} == \
         {k: b[k] for k in ("train_accuracy", "val_accuracy", "test_curve")}


@needs_mnist
def test_a1_sigmoid_perceptron_with_early_stopping_learns():
  row, config, splits = keras_check.load_row("A1", limit=2000)
  assert config.early_stopping.enabled  # report A's EarlyStopping(patience 5) goes along
  r = keras_check.train_row(row, config, splits, seed=0, epochs=6)
  assert r["epochs"] == 6  # val_loss still falls: no early stop yet
  # It learns, slowly (SGD lr 0.01, 84 steps): 0.16 after one epoch, ~0.40 after six.
  assert r["test_curve"][-1] > r["test_curve"][0] + 0.1 and r["test_accuracy"] > 0.3
  with config.unlocked():  # no epoch can lower val_loss by 10: Keras stops after epoch 2
    config.early_stopping.patience, config.early_stopping.min_delta = 0, 10.0
  assert keras_check.train_row(row, config, splits, seed=0, epochs=6)["epochs"] == 2


def test_unknown_row_is_one_line(capsys):
  assert keras_check.main(["--row", "B4"]) == 2
  assert ("no Keras transcription of row 'B4'; rows: A1, B3, B5, B6, C2, D1-30, E6.0, "
          "E6.1, E6.2, E6.3, E6.4 (add one") in capsys.readouterr().err


@needs_mnist
def test_unknown_split_is_one_line(capsys):
  assert keras_check.main(["--row", "B3", "--validation-split", "validation"]) == 2
  assert "error: dataset 'mnist' has no split 'validation'" in capsys.readouterr().err


@needs_mnist
@pytest.mark.slow  # 40 s; the parameter count is also checked in tests/test_models.py
def test_b6_flagship_has_the_published_parameter_count_and_learns_with_its_callbacks():
  row, config, splits = keras_check.load_row("B6", limit=2000)
  assert config.reduce_on_plateau.enabled and config.augment.noise_std == 0.1
  assert optim.learning_rate(config) == 1e-3  # RMSprop, Keras default
  r = keras_check.train_row(row, config, splits, seed=0, epochs=2)
  assert r["params"] == 234_026  # trainable, as REPORTS.md publishes (and digitjax has)
  assert r["test_accuracy"] > 0.5  # it learns in 2 x 29 steps: chance is 0.10
  assert r["final_lr"] == pytest.approx(1e-3)  # patience 3 > 2 epochs
  with config.unlocked():  # epoch 2 cannot lower val_loss by 10: Keras halves the lr
    config.reduce_on_plateau.patience, config.reduce_on_plateau.min_delta = 0, 10.0
  r = keras_check.train_row(row, config, splits, seed=0, epochs=2)
  assert r["final_lr"] == pytest.approx(5e-4)


def test_d1_transcription_has_the_published_parameter_count():
  import keras

  from experiments.reproduce import catalogue
  config = catalogue.load_config(catalogue.rows("D", "D1-30")[0].config)
  model = keras_check.KERAS_MODELS["D1-30"](keras, 10, config.model)
  assert model.count_params() == 1_199_882  # REPORTS.md's figure for net1
  assert config.optimizer.name == "adadelta" and optim.learning_rate(config) == 1e-3


def test_c2_transcription_counts_digitjaxs_parameters():
  import keras

  from digitjax import models
  from experiments.reproduce import catalogue
  config = catalogue.load_config(catalogue.rows("C", "C2")[0].config)
  model = keras_check.KERAS_MODELS["C2"](keras, 10, config.model)
  _, totals = models.summary(models.build(config, 10), (28, 28, 1), config.model.name)
  assert model.count_params() == totals["total"] == 13 * 13 * 32 * 10 + 10 + 320


@pytest.mark.parametrize("step", range(5))
def test_e6_ladder_transcriptions_count_digitjaxs_parameters(step):
  import keras

  from digitjax import models
  from experiments.reproduce import catalogue
  config = catalogue.load_config(catalogue.rows("E", f"E6.{step}")[0].config)
  model = keras_check.build_model(keras, f"E6.{step}", config, 5)
  _, totals = models.summary(models.build(config, 5), (150, 150, 3), config.model.name)
  assert model.count_params() == totals["total"]


@pytest.fixture
def mock_flowers(tmp_path_factory):
  """TFDS's mock data, which serves any dataset (here tf_flowers' photos)."""
  with mock_data(tmp_path_factory.mktemp("empty_tfds")):
    yield


def test_e6_row_trains_in_keras_on_raw_pixels_with_logits(mock_flowers):
  """The ladder's Keras models rescale [0, 255] pixels themselves: a [0, 1] input would
  train on near-black images and still run, so the scale is asserted, not assumed."""
  row, config, splits = keras_check.load_row("E6.1", limit=48)
  (x, y), (xv, _), (xt, _) = splits
  assert x.shape[1:] == (150, 150, 3) and x.max() > 1.0 and x.max() <= 255.0
  assert config.monitor == "val_accuracy" and config.early_stopping.enabled
  r = keras_check.train_row(row, config, splits, seed=0, epochs=2)
  assert r["epochs"] == 2 and r["best_val_accuracy"] >= r["val_accuracy"]
  assert r["best_test_accuracy"] == max(r["test_curve"])  # test is the val split here
