"""TensorBoard events of a tiny run, read back: train and val on one chart, lr, the
config as text, the figures and the hparams."""
import glob
import io
import os

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_config
from digitjax import main
from experiments.reproduce import runner


def _events(folder) -> dict:
  """{tag: [summary values]} of the event files directly in folder."""
  import tensorflow as tf

  tags = {}
  for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        tags.setdefault(value.tag, []).append(value)
  return tags


@pytest.mark.parametrize("num_seeds", [1, 2])
def test_tensorboard_holds_one_chart_per_metric_hparams_figures_and_config(
    tmp_path, num_seeds, no_prepared_data):
  # no prepared data: the mock examples are neither read from nor written to the split
  # cache under the real MNIST's key
  c = tiny_config(**{"num_seeds": num_seeds, "batch_size": 50})
  with runner.mock_tfds(num_examples=600):
    results = main.run(c, str(tmp_path))
  tb = tmp_path / "tb"
  prefix = ["seed0/", "seed1/"] if num_seeds > 1 else [""]
  train, val, top = _events(tb / "train"), _events(tb / "val"), _events(tb)
  for p in prefix:  # the same tag in the runs train and val: one chart, two lines
    for metric in ("loss", "accuracy"):
      assert len(train[p + metric]) == 2 and len(val[p + metric]) == 2
    assert len(top[p + "lr"]) == 2
  assert [v.simple_value for v in val[prefix[0] + "accuracy"]] != []
  assert "val_loss" not in train and "loss" not in top  # no stray single-line charts
  assert top["config/text_summary"][0].tensor.string_val[0].decode().count('"num_epochs"')
  for figure in ("history", "confusion_matrix"):  # the very pixels of the run's PNGs
    shown = top[figure][0].image.encoded_image_string
    assert shown.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(shown)) as a, Image.open(tmp_path / f"{figure}.png") as b:
      assert np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))
  hparams = _events(tb / "hparams")
  assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(hparams)
  start = hparams["_hparams_/session_start_info"][0].metadata.plugin_data.content
  assert b"model.hidden_units" in start and b"optimizer.name" in start
  test = hparams["hparam/test_accuracy"][0].simple_value
  assert test == pytest.approx(results["test_accuracy"])
  assert "hparam/val_loss" in hparams
