"""digitjax from Python: load a config file with its variant, change fields, fit it to a
workdir with a per-epoch hook, and get the results back."""
import json

import numpy as np
import pytest

import digitjax
from conftest import ROOT
from digitjax.errors import UserError


def test_load_change_train_with_a_hook(tmp_path, mock_mnist):
  config = digitjax.load_config(str(ROOT / "configs" / "report_a.py") + ":a1_perceptron")
  assert config.model.name == "perceptron"
  config.num_epochs, config.batch_size = 2, 50
  config.dataset.max_train_examples = 300
  seen = []

  def hook(record, state):  # the user's own code: here, the norm of the weights
    seen.append((record, float(np.linalg.norm(np.asarray(state.params["01_dense"]["kernel"])))))

  results = digitjax.fit(config, str(tmp_path / "a1"), on_epoch_end=hook)
  history = [json.loads(line) for line in (tmp_path / "a1" / "metrics.jsonl").open()]
  assert [r for r, _ in seen] == history and [r["epoch"] for r in history] == [1, 2]
  assert seen[0][1] != seen[1][1] > 0  # the state it was handed is the trained one
  assert results == json.loads((tmp_path / "a1" / "results.json").read_text())
  assert results["best_epoch"] in (1, 2)


def test_a_hook_that_raises_stops_the_run_with_the_epoch_saved(tmp_path, mock_mnist):
  config = digitjax.load_config(str(ROOT / "tests" / "tiny_config.py"))
  config.num_epochs = 3

  def stop(record, state):
    raise RuntimeError("enough")

  with pytest.raises(RuntimeError, match="enough"):
    digitjax.fit(config, str(tmp_path / "run"), on_epoch_end=stop)
  assert (tmp_path / "run" / "checkpoints" / "latest").is_dir()
  assert digitjax.fit(config, str(tmp_path / "run"))["epochs_run"] == 3  # resumes


def test_a_bad_spec_is_one_message():
  with pytest.raises(UserError, match="has no variant 'nope'"):
    digitjax.load_config(str(ROOT / "configs" / "report_a.py") + ":nope")
