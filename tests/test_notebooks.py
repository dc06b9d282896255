"""experiments.keras.notebooks: the authors' Keras logs, transcribed, beside our curves."""
import csv
import json
import re

import pytest

from experiments.keras import notebooks

# Keras 2's fit output as the notebooks hold it: progress lines, a warning between an
# epoch's header and its line, and EarlyStopping's own "Epoch 00003" line.
ONE_OUTPUT = (
    "Epoch 1/150\n"
    "108/108 [==============================] - 14s 103ms/step - loss: 1.2939 - accuracy: "
    "0.4349 - val_loss: 1.1232 - val_accuracy: 0.5504\n"
    "Epoch 2/150\n"
    "WARNING:tensorflow:Callbacks method `on_train_batch_end` is slow\n"
    " 50/108 [============>.................] - ETA: 5s - loss: 1.1 - accuracy: 0.51\r"
    "108/108 [==============================] - 9s 85ms/step - loss: 1.0612 - accuracy: "
    "0.5669 - val_loss: 0.9954 - val_accuracy: 0.6037\n"
    "Restoring model weights from the end of the best epoch.\n"
    "Epoch 00002: early stopping\n")
THREE_OUTPUTS = (
    "Epoch 1/200\n"
    "108/108 [==============================] - 14s 103ms/step - loss: 5.0505 - "
    "dense_39_loss: 1.6011 - dense_36_loss: 1.7949 - dense_38_loss: 1.6545 - "
    "dense_39_accuracy: 0.2484 - dense_36_accuracy: 0.2736 - dense_38_accuracy: 0.2481 - "
    "val_loss: 4.4502 - val_dense_39_loss: 1.5523 - val_dense_36_loss: 1.4042 - "
    "val_dense_38_loss: 1.4937 - val_dense_39_accuracy: 0.2572 - val_dense_36_accuracy: "
    "0.4426 - val_dense_38_accuracy: 0.3221\n")


def test_each_epochs_last_line_is_read_and_other_lines_are_not():
  assert notebooks.parse_log(ONE_OUTPUT) == [
      dict(epoch=1, accuracy=0.4349, val_accuracy=0.5504, loss=1.2939, val_loss=1.1232),
      dict(epoch=2, accuracy=0.5669, val_accuracy=0.6037, loss=1.0612, val_loss=0.9954)]


def test_a_multi_output_log_gives_the_named_outputs_figures():
  assert notebooks.parse_log(THREE_OUTPUTS, "dense_39") == [
      dict(epoch=1, accuracy=0.2484, val_accuracy=0.2572, loss=1.6011, val_loss=1.5523)]
  with pytest.raises(ValueError, match="epoch 1's log has no dense_40_accuracy"):
    notebooks.parse_log(THREE_OUTPUTS, "dense_40")


def _notebook(text):
  return {"cells": [{"cell_type": "code", "outputs": [{"name": "stdout", "text": [text]}]}]}


def test_extract_writes_one_curve_a_row_and_reads_it_back(tmp_path):
  source, out = tmp_path / "nb", tmp_path / "curves"
  source.mkdir()
  for _, name, output in notebooks.SOURCES.values():
    text = THREE_OUTPUTS.replace("dense_39", output) if output else ONE_OUTPUT
    (source / name).write_text(json.dumps(_notebook(text)))
  assert notebooks.extract(str(source), str(out)) == list(notebooks.SOURCES)
  assert len(notebooks.read_curve("E6.0", str(out))) == 2
  assert notebooks.read_curve("E5-sgd", str(out))[0]["val_accuracy"] == 0.2572


def test_extract_names_the_missing_notebooks_and_writes_nothing(tmp_path):
  (tmp_path / "GoogleNet SGD.ipynb").write_text(json.dumps(_notebook(THREE_OUTPUTS)))
  with pytest.raises(ValueError, match="lacks 18 notebook.*GoogleNet Adadelta.ipynb"):
    notebooks.extract(str(tmp_path), str(tmp_path / "curves"))
  assert not (tmp_path / "curves").exists()


def test_the_table_sets_our_seeds_beside_the_notebook(tmp_path):
  curves, runs = tmp_path / "curves", tmp_path / "runs"
  curves.mkdir()
  with open(curves / "E6.0.csv", "w", newline="") as f:
    w = csv.DictWriter(f, notebooks.FIELDS)
    w.writeheader()
    w.writerows(notebooks.parse_log(ONE_OUTPUT))
  alone = notebooks.table("E6.0", workroot=str(runs), folder=str(curves))
  assert alone.splitlines()[2] == "| 1 | 43.5 | 55.0 |"
  assert f"No run of E6.0 under {runs} has a val figure yet." in alone
  (runs / "E6.0" / "seed1").mkdir(parents=True)
  (runs / "E6.0" / "seed1" / "metrics.jsonl").write_text("".join(
      json.dumps(dict(epoch=e, accuracy=a, val_accuracy=v)) + "\n"
      for e, a, v in [(1, 0.5, 0.6), (2, 0.7, 0.65), (3, 0.8, 0.64)]))
  lines = notebooks.table("E6.0", workroot=str(runs), folder=str(curves)).splitlines()
  assert lines[0] == "| epoch | notebook train | notebook val | seed1 train | seed1 val |"
  assert lines[2:] == ["| 1 | 43.5 | 55.0 | 50.0 | 60.0 |", "| 2 | 56.7 | 60.4 | 70.0 | 65.0 |",
                       "| 3 |  |  | 80.0 | 64.0 |",
                       "| best val |  | 60.37 (epoch 2 of 2) |  | 65.00 (epoch 2 of 3) |", "",
                       "Ours minus the notebook: train accuracy +9.91 points over 2 epochs; "
                       "val accuracy from epoch 10 no epoch."]


@pytest.mark.parametrize("argv,message", [
    (["E9"], "no notebook for row 'E9'; rows with one: E2-adam, "),
    (["E6.0", "--epochs=1,x"], "--epochs=1,x: give epochs from 1 up"),
    ([], "name a row (e.g. E5-sgd) or --extract FOLDER"),
    (["--extract", "/nonexistent"], "/nonexistent lacks 19 notebook(s)")])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
  with pytest.raises(SystemExit) as e:
    notebooks.main(argv)
  err = capsys.readouterr().err
  assert e.value.code == 2 and err.startswith(f"error: {message}") and err.count("\n") == 1


@pytest.mark.parametrize("row", list(notebooks.SOURCES))
def test_the_committed_curves_are_whole(row):
  """Each transcribed log runs from epoch 1 without a gap, with figures a log can hold."""
  curve = notebooks.read_curve(row)
  assert [r["epoch"] for r in curve] == list(range(1, len(curve) + 1))
  for r in curve:
    assert 0 <= r["accuracy"] <= 1 and 0 <= r["val_accuracy"] <= 1 and r["val_loss"] >= 0


def test_the_gaps_count_val_from_epoch_10_and_every_seed():
  rec = lambda e, a, v: {e: dict(epoch=e, accuracy=a, val_accuracy=v)}
  theirs = {**rec(9, .5, .5), **rec(10, .6, .5), **rec(11, .7, .6)}
  by_epoch = {"notebook": theirs, "seed0": {**rec(9, .5, .9), **rec(10, .7, .6)},
              "seed1": {**rec(11, .7, .8), **rec(12, .9, .9)}}
  assert notebooks._gaps(by_epoch) == (
      "Ours minus the notebook: train accuracy +3.33 points over 3 epochs; val accuracy "
      "from epoch 10 +15.00 points over 2 epochs.")


@pytest.mark.parametrize("text,message", [
    ("no fit here", "V7_Mejora_2_GAP.ipynb holds no Keras training log"),
    (ONE_OUTPUT + ONE_OUTPUT, "holds more than one training run, or a gap (its epochs: 1, 2, 1"),
    (ONE_OUTPUT.replace("val_accuracy", "val_acc"), "epoch 1's log has no val_accuracy")])
def test_a_notebook_that_is_not_one_run_is_refused_and_nothing_written(tmp_path, text,
                                                                       message):
  source = tmp_path / "nb"
  source.mkdir()
  for _, name, output in notebooks.SOURCES.values():
    ours = THREE_OUTPUTS.replace("dense_39", output) if output else ONE_OUTPUT
    (source / name).write_text(json.dumps(_notebook(text if name.startswith("V7_Mejora_2")
                                                    else ours)))
  with pytest.raises(ValueError, match=re.escape("V7_Mejora_2_GAP.ipynb")) as e:
    notebooks.extract(str(source), str(tmp_path / "curves"))
  assert message in str(e.value)
  assert not (tmp_path / "curves").exists()


def test_a_damaged_metrics_file_is_one_line(tmp_path, capsys):
  (tmp_path / "E6.0" / "seed0").mkdir(parents=True)
  (tmp_path / "E6.0" / "seed0" / "metrics.jsonl").write_text('{"epoch": 1, "accur')
  with pytest.raises(SystemExit) as e:
    notebooks.main(["E6.0", f"--workroot={tmp_path}"])
  err = capsys.readouterr().err
  assert e.value.code == 2 and err.count("\n") == 1
  assert err.startswith(f"error: {tmp_path}/E6.0/seed0/metrics.jsonl cannot be read"), err
