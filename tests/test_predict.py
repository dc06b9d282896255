"""digitjax.load / predict / export and --mode=predict, --eval_split on a tiny trained run."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, npz_data, tiny_config
import digitjax
from digitjax import checkpoints, data, inference, main, predict, steps
from digitjax import trainer as trainer_lib
from digitjax.errors import UserError


@pytest.fixture(scope="module", autouse=True)
def _npz_data(tmp_path_factory):
  """Random MNIST-shaped splits (600 examples each, npz_data's, the same arrays as
  mock_cli's): predict = eval whatever the weights learned."""
  with npz_data(tmp_path_factory.mktemp("npz")):
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
  trainer = trainer_lib.Trainer(c, steps_per_epoch=1)
  state, _ = checkpoints.Checkpoints(workdir).restore_best(trainer.abstract_state())
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  variables = {k: __import__("jax").tree.map(lambda x: x[0], v) for k, v in variables.items()}
  return np.asarray(trainer.model.apply(variables, steps.to_float(images), train=False))


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
  text = repr(model)
  assert text.startswith("Model('tiny', mlp, seed 0, input 28x28x1, 10 classes, ")
  assert " parameters, from " in text and "\n" not in text and len(text) < 300


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
  assert out["test_examples"] == 60  # 10% of the 600 test examples
  after = {f: os.path.getmtime(os.path.join(d, f)) for d, _, fs in os.walk(tmp / "w")
           for f in fs}
  assert before == after


# --- the input contract and what predict cannot read (one line, exit 2, nothing written) --

def _bomb_png(path, side=30000):
  """A PNG whose header claims side x side pixels: Pillow refuses it at open."""
  import struct
  import zlib
  chunk = lambda t, d: (struct.pack(">I", len(d)) + t + d
                        + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff))
  path.write_bytes(b"\x89PNG\r\n\x1a\n"
                   + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                   + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b""))


def test_images_outside_the_input_contract_are_refused_naming_what_was_found(run):
  _, tmp, images, _ = run
  model = digitjax.load(str(tmp / "w"))
  with pytest.raises(UserError, match=r"0-1; these span 0 to 2\d\d. They look like 0-255"):
    model.predict(images.astype(np.float32))
  with_nan = images.astype(np.float32) / 255
  with_nan[0, 3, 3, 0] = np.nan
  with pytest.raises(UserError, match="1 NaN or infinite"):
    model.predict(with_nan)
  with pytest.raises(UserError, match="int64"):
    model.predict(images.astype(np.int64))


def test_a_16_bit_png_is_read_at_its_own_depth_not_clipped(run, tmp_path):
  _, tmp, images, _ = run
  deep = images[0, :, :, 0].astype(np.uint16) * 257  # the same picture, 16 bits a pixel
  Image.fromarray(deep).save(tmp_path / "deep.png")
  read = predict.read_image(str(tmp_path / "deep.png"), channels=1)
  np.testing.assert_allclose(read, images[0, :, :, 0] / 255, atol=1e-6)
  model = digitjax.load(str(tmp / "w"))
  np.testing.assert_allclose(model.predict(read), model.predict(images[:1]), atol=1e-5)


def test_an_image_pillow_cannot_decode_in_any_way_is_one_line(run, tmp_path, monkeypatch):
  _, tmp, _, _ = run
  _bomb_png(tmp_path / "bomb.png")
  r = _cli("--mode=predict", f"--workdir={tmp / 'w'}", f"--images={tmp_path / 'bomb.png'}")
  assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
  assert "bomb.png" in r.stderr and "DecompressionBombError" in r.stderr
  (tmp_path / "chunks.png").write_bytes(b"")

  def broken(*_):
    raise SyntaxError("broken PNG file")  # what Pillow raises for some damaged chunks
  monkeypatch.setattr(predict, "read_image", broken)
  with pytest.raises(UserError, match="chunks.png.*SyntaxError: broken PNG file"):
    predict.read_images(str(tmp_path / "chunks.png"), 1)


def test_export_onto_a_folder_and_edited_configs_are_refused(run, tmp_path):
  import json
  _, tmp, _, _ = run
  (tmp_path / "out").mkdir()
  with pytest.raises(UserError, match="is a folder"):
    inference.export(str(tmp / "w"), str(tmp_path / "out"))
  assert os.listdir(tmp_path) == ["out"] and os.listdir(tmp_path / "out") == []
  from flax import serialization
  blob = serialization.msgpack_restore(
      open(inference.export(str(tmp / "w"), str(tmp_path / "m.msgpack")), "rb").read())
  for name, message in (("cnn_bn", "weights do not fit"), ("no_such_family", "not a valid")):
    config = json.loads(blob["config"])
    config["model"]["name"] = name
    edited = tmp_path / f"{name}.msgpack"
    edited.write_bytes(serialization.msgpack_serialize(dict(blob, config=json.dumps(config))))
    with pytest.raises(UserError, match=message):
      digitjax.load(str(edited))


def test_eval_reads_a_run_under_another_eval_batch_size_and_advises_without_fresh(run):
  c, tmp, _, _ = run
  recorded = main.run(c, str(tmp / "w"), mode="eval")
  other = tiny_config(eval_batch_size=7)  # changes how it is evaluated, not a figure
  again = main.run(other, str(tmp / "w"), mode="eval")
  assert again["test_accuracy"] == recorded["test_accuracy"]
  assert again["test_loss"] == pytest.approx(recorded["test_loss"], rel=1e-5)
  with pytest.raises(UserError) as e:
    main.run(tiny_config(seed=5), str(tmp / "w"), mode="eval")
  assert "a run of a different config (seed" in str(e.value)
  assert "--fresh" not in str(e.value) and "config.json" in str(e.value)


def test_eval_of_a_workdir_alone_takes_the_config_its_training_recorded(run, tmp_path):
  from conftest import mock_cli
  from digitjax import reporting
  c, tmp, _, _ = run
  recorded = main.run(c, str(tmp / "w"), mode="eval", eval_split=None)
  r = mock_cli(tmp_path, "--mode=eval", f"--workdir={tmp / 'w'}")
  assert r.returncode == 0, r.stderr
  assert f"accuracy {reporting.percent(recorded['test_accuracy'])}" in r.stdout
  r = mock_cli(tmp_path, "--mode=eval", f"--workdir={tmp_path / 'nothing'}")
  assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not a trained run" in r.stderr
