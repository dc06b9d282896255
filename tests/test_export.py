"""Exports that run elsewhere (digitjax.export): the jax.export .npz with jax and numpy
alone, the TensorFlow SavedModel with TensorFlow alone, each giving digitjax's own
probabilities on real MNIST test images; the loader snippets of docs/using_models.md are
what runs."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, needs_mnist, tiny_config
import digitjax
from digitjax import data, export, main
from digitjax.errors import UserError

pytestmark = needs_mnist

# a finder first on sys.path's import machinery: importing any of these raises
BLOCK = ("import sys\n"
         "class _Block:\n"
         "  def find_spec(self, name, path=None, target=None):\n"
         "    if name.split('.')[0] in {blocked!r}:\n"
         "      raise ImportError(name + ' is blocked: the export must run without it')\n"
         "sys.meta_path.insert(0, _Block())\n")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """A tiny MLP trained on 2,000 real MNIST images, and 20 real test images."""
  tmp = tmp_path_factory.mktemp("export")
  c = tiny_config(**{"dataset.max_test_examples": 20})
  main.run(c, str(tmp / "w"))
  return str(tmp / "w"), data.load_test(c).images


GUIDE = ROOT / "docs" / "using_models.md"  # where a user reads how to load an export


def guide_snippet(marker: str) -> str:
  """The guide's ```python block that contains marker."""
  blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
  found = [b for b in blocks if marker in b]
  assert len(found) == 1, f"{GUIDE.name} has {len(found)} python blocks with {marker!r}"
  return found[0]


def run_alone(folder, snippet: str, blocked: tuple, images) -> np.ndarray:
  """The snippet run by a fresh python in folder (not the checkout) with `blocked`
  unimportable, `images` given; returns the `probs` it computed."""
  np.save(folder / "images.npy", images)
  script = (BLOCK.format(blocked=blocked) + "import numpy as np\n"
            "images = np.load('images.npy')\n" + snippet
            + "\nnp.save('probs.npy', np.asarray(probs))\n"
            "assert not any(m.split('.')[0] in %r for m in sys.modules)\n" % (blocked,))
  r = subprocess.run([sys.executable, "-c", script], cwd=folder, capture_output=True,
                     text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert r.returncode == 0, r.stderr[-3000:]
  return np.load(folder / "probs.npy")


def test_the_jax_export_predicts_with_jax_alone_as_digitjax_does(run, tmp_path):
  workdir, images = run
  want = digitjax.load(workdir).predict(images)
  (tmp_path / "alone").mkdir()
  # the names the guide's snippets load
  path = export.to_jax(workdir, str(tmp_path / "alone" / "bn.npz"))
  assert os.listdir(tmp_path / "alone") == ["bn.npz"]  # one file, no .tmp left
  got = run_alone(tmp_path / "alone", guide_snippet("jax.export.deserialize"),
                  ("digitjax", "flax", "tensorflow", "optax", "orbax"), images)
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)  # the same XLA: equal in fact
  np.testing.assert_array_equal(got.argmax(1), want.argmax(1))
  with np.load(path) as z:
    meta = json.loads(str(z["meta"]))
    import jax
    program = jax.export.deserialize(bytearray(z["program"].tobytes()))
  assert meta["class_names"] == list("0123456789") and meta["input_shape"] == [28, 28, 1]
  assert json.loads(meta["config"])["name"] == "tiny"
  assert program.platforms == export.PLATFORMS  # the same file for CPU, GPU and TPU


def test_the_savedmodel_predicts_with_tensorflow_alone_as_digitjax_does(run, tmp_path):
  pytest.importorskip("tensorflow")
  workdir, images = run
  want = digitjax.load(workdir).predict(images)
  (tmp_path / "alone").mkdir()
  export.to_savedmodel(workdir, str(tmp_path / "alone" / "bn_tf"))
  assert os.listdir(tmp_path / "alone") == ["bn_tf"]
  got = run_alone(tmp_path / "alone", guide_snippet("tf.saved_model.load"),
                  ("digitjax", "flax", "jax", "jaxlib"), images)
  # TensorFlow runs the program with its own XLA build: equal up to float rounding
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
  np.testing.assert_array_equal(got.argmax(1), want.argmax(1))


def _cli(*args):
  return subprocess.run([sys.executable, "-m", "digitjax.main", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


def test_mode_export_writes_each_format_and_refuses_what_it_cannot_write(run, tmp_path):
  workdir, images = run
  r = _cli("--mode=export", f"--workdir={workdir}", f"--export_to={tmp_path / 'm.npz'}")
  assert r.returncode == 0 and r.stdout.startswith(f"Wrote {tmp_path / 'm.npz'}"), r.stderr
  r = _cli("--mode=export", f"--workdir={workdir}", "--export_format=msgpack",
           f"--export_to={tmp_path / 'm.msgpack'}")
  assert r.returncode == 0, r.stderr
  np.testing.assert_array_equal(digitjax.load(str(tmp_path / "m.msgpack")).predict(images),
                                digitjax.load(workdir).predict(images))
  (tmp_path / "full").mkdir()
  (tmp_path / "full" / "keep.txt").write_text("mine")
  before = sorted(os.listdir(tmp_path))
  for args, message in (
      ([f"--export_to={tmp_path / 'full'}", "--export_format=savedmodel"], "not empty"),
      ([f"--export_to={tmp_path / 'm.npz'}", "--export_format=savedmodel"], "is a file"),
      ([], "--mode=export needs --export_to"),
      ([f"--export_to={tmp_path / 'x'}", "--export_format=onnx"], "export_format"),
      ([f"--export_to={tmp_path / 'x'}", "--mode=eval"], "with --mode=export, not")):
    r = _cli("--mode=export", f"--workdir={workdir}", *args)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
  assert sorted(os.listdir(tmp_path)) == before  # nothing written, nothing replaced
  assert os.listdir(tmp_path / "full") == ["keep.txt"]
  with pytest.raises(UserError, match="choose one of jax, savedmodel, msgpack"):
    export.export(workdir, str(tmp_path / "y"), "onnx")
