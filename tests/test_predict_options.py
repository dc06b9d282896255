"""--mode=predict on real images: --resize, the polarity warning and --invert, --top K,
--format json|csv (digitjax.predict), on a tiny model trained on real MNIST."""
import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, needs_mnist, tiny_config
import digitjax
from digitjax import data, main, predict
from digitjax.errors import UserError

pytestmark = needs_mnist


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """A tiny MLP trained on real MNIST, and 200 real test images."""
  tmp = tmp_path_factory.mktemp("predict_options")
  c = tiny_config(**{"dataset.max_test_examples": 200})
  main.run(c, str(tmp / "w"))
  return str(tmp / "w"), data.load_test(c).images


def _cli(*args):
  return subprocess.run([sys.executable, "-m", "digitjax.main", "--mode=predict", *args],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_polarity_rule_holds_on_real_mnist_and_flags_inverted_digits(run):
  """No real MNIST test image has a light border; every inverted one has."""
  _, images = run
  assert "mnist" in predict.DARK_BACKGROUND
  assert not predict.light_background(images).any()
  assert predict.light_background(255 - images).all()
  assert predict.light_background(1 - images.astype(np.float32) / 255).all()


def test_top_k_json_and_csv_give_the_models_probabilities(run, tmp_path, capsys):
  workdir, images = run
  np.save(tmp_path / "x.npy", images[:5])
  want = digitjax.load(workdir).predict(images[:5])
  rows = predict.predict(workdir, str(tmp_path / "x.npy"), top=3, fmt="json")
  printed = json.loads(capsys.readouterr().out)
  assert printed == rows and len(rows) == 5
  for row, p in zip(rows, want):
    best = np.argsort(-p)[:3]
    assert [t["class"] for t in row["top"]] == [str(k) for k in best]
    assert [t["probability"] for t in row["top"]] == pytest.approx(p[best], abs=1e-7)
  predict.predict(workdir, str(tmp_path / "x.npy"), top=2, fmt="csv")
  table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
  assert [(r["image"], r["rank"]) for r in table[:3]] == [
      (f"{tmp_path / 'x.npy'}[0]", "1"), (f"{tmp_path / 'x.npy'}[0]", "2"),
      (f"{tmp_path / 'x.npy'}[1]", "1")]
  assert len(table) == 10 and float(table[0]["probability"]) == pytest.approx(
      want[0].max(), rel=1e-5)
  predict.predict(workdir, str(tmp_path / "x.npy"), top=2)  # text: the default
  lines = capsys.readouterr().out.splitlines()
  assert len(lines) == 5 and len(lines[0].split("\t")) == 5
  with pytest.raises(UserError, match="--top=11: this model has 10 classes"):
    predict.predict(workdir, str(tmp_path / "x.npy"), top=11)


def test_resize_and_invert_on_a_photo_like_image(run, tmp_path):
  """A digit drawn at 3x the size as dark ink on white: refused without --resize (naming
  the model's input), warned about without --invert, read right with both."""
  workdir, images = run
  model = digitjax.load(workdir)
  right = model.predict(images[:20]).argmax(1)
  k = int(np.argmax(model.predict(images[:20]).max(1)))  # the surest of the 20
  big = Image.fromarray(255 - images[k, :, :, 0]).resize((84, 84), Image.BICUBIC)
  big.save(tmp_path / "ink.png")
  r = _cli(f"--workdir={workdir}", f"--images={tmp_path / 'ink.png'}")
  assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
  assert "84x84 pixels; this model takes 28x28x1. Pass --resize" in r.stderr
  r = _cli(f"--workdir={workdir}", f"--images={tmp_path / 'ink.png'}", "--resize")
  assert r.returncode == 0, r.stderr
  assert "warning: 1 of 1 images look like a dark shape on a light background" in r.stderr
  assert "ink.png" in r.stderr and "--invert" in r.stderr
  r = _cli(f"--workdir={workdir}", f"--images={tmp_path / 'ink.png'}", "--resize", "--invert",
           "--format=json")
  assert r.returncode == 0 and r.stderr == "", r.stderr
  assert json.loads(r.stdout)[0]["top"][0]["class"] == str(right[k])
  resized = predict.resize(np.asarray(big)[None, :, :, None], (28, 28))
  assert resized.shape == (1, 28, 28, 1) and resized.dtype == np.float32
  assert 0 <= resized.min() and resized.max() <= 1


def test_predict_flags_elsewhere_and_bad_values_are_one_line(run):
  workdir, _ = run
  for args, message in ((["--top=0"], "--top=0: give how many classes"),
                        (["--format=xml"], "--format"),
                        (["--mode=eval", "--top=3"], "--top goes with --mode=predict"),
                        (["--mode=eval", "--resize", "--format=csv"],
                         "--resize and --format go with --mode=predict")):
    r = _cli(f"--workdir={workdir}", "--images=x.png", *args)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("error: ") and message in r.stderr and r.stdout == ""
