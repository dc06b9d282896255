"""digitjax.load / predict / export and --mode=predict, --eval_split on a tiny trained run."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, mock_data, tiny_config
import digitjax
from digitjax import checkpoints, data, inference, main, train
from digitjax.errors import UserError


@pytest.fixture(scope="module", autouse=True)
def _mock_data(tmp_path_factory):
  """Mock MNIST (600 examples a split): predict = eval whatever the weights learned."""
  with mock_data(tmp_path_factory.mktemp("empty_tfds")):
    yield


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """A tiny run on mock MNIST, and 50 of its test images saved as PNGs."""
  tmp = tmp_path_factory.mktemp("predict")
  c = tiny_config()
  main.run(c, str(tmp / "w"))
  test = data.load_test(c)
  images, labels = test.images[:50], test.labels[:50]
  (tmp / "png").mkdir()
  for i, im in enumerate(images):
    Image.fromarray(im[:, :, 0]).save(tmp / "png" / f"{i:02d}.png")
  return c, tmp, images, labels


def _trainer_logits(c, workdir, images):
  """The model's logits the way eval does it: Trainer, best checkpoint, to_float."""
  trainer = train.Trainer(c, steps_per_epoch=1)
  state, _ = checkpoints.Checkpoints(workdir).restore_best(trainer.abstract_state())
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  variables = {k: __import__("jax").tree.map(lambda x: x[0], v) for k, v in variables.items()}
  return np.asarray(trainer.model.apply(variables, train.to_float(images), train=False))


def test_predict_matches_eval_and_export(run, tmp_path):
  c, tmp, images, labels = run
  model = digitjax.load(str(tmp / "w"))
  assert model.class_names == data.DATASETS["mnist"].class_names
  assert model.config.model.name == "mlp"
  p = model.predict(images)
  assert p.shape == (50, 10) and p.dtype == np.float32
  np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
  logits = _trainer_logits(c, str(tmp / "w"), images)
  np.testing.assert_array_equal(p.argmax(1), logits.argmax(1))
  assert (p.argmax(1) == labels).mean() == (logits.argmax(1) == labels).mean()
  np.testing.assert_array_equal(model.predict(images.astype(np.float32) / 255), p)
  np.testing.assert_array_equal(model.predict(images[:, :, :, 0]), p)  # no channel axis
  np.testing.assert_allclose(model.predict(images[3]), p[3:4], atol=1e-6)  # batch of 1
  # from the PNGs, read as the CLI reads them
  pngs = np.stack([np.asarray(Image.open(tmp / "png" / f"{i:02d}.png")) for i in range(50)])
  np.testing.assert_array_equal(model.predict(pngs), p)
  # the exported params alone
  path = inference.export(str(tmp / "w"), str(tmp_path / "tiny.msgpack"))
  exported = digitjax.load(path)
  np.testing.assert_array_equal(exported.predict(images), p)
  assert exported.class_names == model.class_names
  assert digitjax.load(str(tmp / "w"), which="latest").predict(images).shape == (50, 10)


def test_user_errors(run, tmp_path):
  c, tmp, images, _ = run
  model = digitjax.load(str(tmp / "w"))
  for bad in (images[:, :27], np.repeat(images, 3, axis=-1), images.astype(np.int64)):
    with pytest.raises(UserError, match="images"):
      model.predict(bad)
  with pytest.raises(UserError, match="which"):
    digitjax.load(str(tmp / "w"), which="worst")
  with pytest.raises(UserError, match="not a trained run"):
    digitjax.load(str(tmp_path))
  (tmp_path / "config.json").write_text((tmp / "w" / "config.json").read_text())
  with pytest.raises(UserError, match="no best checkpoint"):
    digitjax.load(str(tmp_path))
  assert not (tmp_path / "checkpoints").exists()  # created nothing
  with pytest.raises(UserError, match="seed"):
    digitjax.load(str(tmp / "w"), seed=5)
  (tmp_path / "junk.msgpack").write_bytes(b"not a model")
  with pytest.raises(UserError, match="export"):
    digitjax.load(str(tmp_path / "junk.msgpack"))


def _cli(*args):
  return subprocess.run([sys.executable, "-m", "digitjax.main", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)


def test_cli_predict_and_eval_split(run, tmp_path, monkeypatch):
  c, tmp, images, _ = run
  np.save(tmp_path / "x.npy", images[:4])
  r = _cli("--mode=predict", f"--workdir={tmp / 'w'}",
           f"--images={tmp / 'png'},{tmp_path / 'x.npy'}")
  assert r.returncode == 0, r.stderr
  lines = [l.split("\t") for l in r.stdout.strip().splitlines()]
  assert len(lines) == 54
  p = digitjax.load(str(tmp / "w")).predict(images)
  assert [l[1] for l in lines[:50]] == [str(k) for k in p.argmax(1)]
  assert lines[0][0].endswith("00.png") and lines[50][0].endswith("x.npy[0]")
  assert [float(l[2]) for l in lines[:50]] == pytest.approx(p.max(1), abs=1e-4)
  r = _cli("--mode=predict", f"--workdir={tmp / 'w'}", f"--images={tmp_path / 'nope.png'}")
  assert r.returncode == 2 and r.stderr.count("\n") == 1 and "nope.png" in r.stderr
  # eval on another split: prints, writes nothing in the workdir
  before = {f: os.path.getmtime(os.path.join(d, f)) for d, _, fs in os.walk(tmp / "w")
            for f in fs}
  read, read_split = [], data.read_split
  monkeypatch.setattr(data, "read_split",
                      lambda config, split, limit=0: read.append(split) or read_split(
                          config, split, limit))
  out = main.run(c, str(tmp / "w"), mode="eval", eval_split="test[:10%]")
  assert read == ["test[:10%]"] and out["split"] == "test[:10%]"
  assert out["test_examples"] == 600  # mock data: TFDS's slicing is not simulated
  after = {f: os.path.getmtime(os.path.join(d, f)) for d, _, fs in os.walk(tmp / "w")
           for f in fs}
  assert before == after
