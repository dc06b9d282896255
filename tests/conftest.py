"""Shared test helpers: real MNIST from ../shared when present, tiny fast configs."""
import contextlib
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_TFDS = ROOT.parent / "shared" / "tensorflow_datasets"
if "TFDS_DATA_DIR" not in os.environ and SHARED_TFDS.is_dir():
  os.environ["TFDS_DATA_DIR"] = str(SHARED_TFDS)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def _leaves_user_files_alone():
  """Fails the test that created, changed or deleted a file outside pytest's temporary
  folders: in the checkout (runs/ included) or in ~/.cache/digitjax (tests/isolation.py).
  Under pytest-xdist a test on the other worker may be the one that wrote it."""
  import isolation

  roots = isolation.watched_roots(ROOT)
  before = isolation.snapshot(roots)
  yield
  found = isolation.changes(before, isolation.snapshot(roots))
  if found:
    pytest.fail("a test touched files outside its temporary folders (this test, or one "
                "running beside it on the other worker):\n  " + "\n  ".join(found[:20]),
                pytrace=False)


@pytest.fixture(autouse=True, scope="session")
def _split_cache(tmp_path_factory):  # digitjax.data caches read splits here, not ~/.cache
  os.environ["DIGITJAX_CACHE"] = str(tmp_path_factory.mktemp("digitjax_cache"))


@pytest.fixture(autouse=True, scope="session")
def _compilation_cache(tmp_path_factory):
  """One JAX persistent compilation cache for this session's tests and the CLI processes
  they start: most tests compile the same tiny programs again in a fresh process, and a
  compiled program read back is the very executable, so results are unchanged. A size
  limit turns on JAX's file lock (filelock), so processes side by side never read an
  entry half written. Both pytest-xdist workers share the session's folder."""
  import jax

  base = tmp_path_factory.getbasetemp()
  folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "xla_cache"
  folder.mkdir(exist_ok=True)
  settings = {"jax_compilation_cache_dir": str(folder),
              "jax_persistent_cache_min_compile_time_secs": 0,
              "jax_compilation_cache_max_size": 2 << 30}
  for name, value in settings.items():
    os.environ[name.upper()] = str(value)
    jax.config.update(name, value)


def mnist_available() -> bool:
  d = os.environ.get("TFDS_DATA_DIR")
  return bool(d) and (pathlib.Path(d) / "mnist").is_dir()


needs_mnist = pytest.mark.skipif(
    not mnist_available(), reason="prepared MNIST not found; set TFDS_DATA_DIR")


@pytest.fixture
def no_prepared_data(tmp_path, monkeypatch):
  """TFDS_DATA_DIR is an empty folder and TFDS cannot download: every dataset is pending,
  whatever ../shared happens to hold on this machine."""
  from digitjax import data

  empty = tmp_path / "empty_tfds"
  empty.mkdir()
  monkeypatch.setenv("TFDS_DATA_DIR", str(empty))
  monkeypatch.setattr(data, "_online", lambda: False)
  return empty


@contextlib.contextmanager
def mock_data(empty_dir, num_examples=600):
  """TFDS mock data (experiments.reproduce.runner.mock_tfds) with TFDS_DATA_DIR at the empty folder
  empty_dir and TFDS offline, for any fixture scope: what no_prepared_data does, so mock
  examples never meet real MNIST's split cache, whatever ../shared holds."""
  from digitjax import data
  from experiments.reproduce import runner

  pathlib.Path(empty_dir).mkdir(parents=True, exist_ok=True)
  with pytest.MonkeyPatch.context() as mp:
    mp.setenv("TFDS_DATA_DIR", str(empty_dir))
    mp.setattr(data, "_online", lambda: False)
    with runner.mock_tfds(num_examples=num_examples):
      yield


def write_npz_mnist(folder, num_examples=600) -> None:
  """Random MNIST-shaped train and test splits as digitjax.npz_source reads them; the same
  arrays on every call."""
  import numpy as np

  rng = np.random.default_rng(0)
  (pathlib.Path(folder) / "mnist").mkdir(parents=True, exist_ok=True)
  for split in ("train", "test"):
    np.savez(pathlib.Path(folder) / "mnist" / f"{split}.npz",
             images=rng.integers(0, 256, (num_examples, 28, 28, 1), dtype=np.uint8),
             labels=rng.integers(0, 10, num_examples).astype(np.int32))


@contextlib.contextmanager
def npz_data(folder, num_examples=600):
  """Random MNIST-shaped train and test splits (num_examples each) exported as .npz under
  folder, and $DIGITJAX_NPZ_DIR pointing there (digitjax.npz_source), for any fixture
  scope. Runs, here and in the processes a test starts, read them without TensorFlow:
  for tests of the plumbing, where TFDS's mock data cost each process ~3 s of imports."""
  write_npz_mnist(folder, num_examples)
  with pytest.MonkeyPatch.context() as mp:
    mp.setenv("DIGITJAX_NPZ_DIR", str(folder))
    yield


@pytest.fixture
def mock_mnist(tmp_path_factory):
  """This test runs on random MNIST-shaped data (600 examples a split, npz_data; outside
  tmp_path, which may be the test's workdir): for tests of training's plumbing, where
  reading TFDS's mock data cost each run ~0.7 s."""
  with npz_data(tmp_path_factory.mktemp("npz")):
    yield


def with_overrides(c, **overrides):
  """Config c with overrides given as {"a.b": value} (in place; returns c)."""
  for key, value in overrides.items():
    node = c
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return c


def tiny_config(**overrides):
  """tests/tiny_config.py with overrides given as {"a.b": value}."""
  import tiny_config as tiny

  return with_overrides(tiny.get_config(), **overrides)


def pytest_collection_modifyitems(config, items):
  """Long runs are marked `slow` and run only with DIGITJAX_SLOW=1."""
  if os.environ.get("DIGITJAX_SLOW") == "1":
    return
  skip = pytest.mark.skip(reason="slow: set DIGITJAX_SLOW=1 to run")
  for item in items:
    if "slow" in item.keywords:
      item.add_marker(skip)


# tests/tiny_config.py on mock data: 10 steps an epoch, metrics to the host every 2 steps
MOCK_TINY = ("--config=tests/tiny_config.py", "--config.batch_size=50",
             "--config.steps_per_dispatch=2", "--config.log_every_steps=2")


def mock_cli_env(tmp_path, npz=True, **extra) -> dict:
  """A CLI process's environment with TFDS_DATA_DIR empty, so real training end to end
  sees the same data whatever this machine holds: npz_data's random splits (written under
  tmp_path), or with npz=False none (for a process that mocks TFDS itself)."""
  empty = tmp_path / "no_tfds_data"
  empty.mkdir(exist_ok=True)
  env = {k: v for k, v in os.environ.items()  # rich's overrides of terminal detection
         if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "DIGITJAX_NPZ_DIR")}
  if npz:
    write_npz_mnist(tmp_path / "npz")
    env["DIGITJAX_NPZ_DIR"] = str(tmp_path / "npz")
  return dict(env, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1", TFDS_DATA_DIR=str(empty),
              **extra)


def mock_cli(tmp_path, *args, timeout=300, **env):
  """`python -m digitjax.main *args` on npz_data's random splits, stdout and stderr piped
  (text); env:
  extra environment variables."""
  import subprocess
  import sys

  return subprocess.run([sys.executable, "-m", "digitjax.main", *args], cwd=ROOT,
                        env=mock_cli_env(tmp_path, **env), capture_output=True, text=True,
                        timeout=timeout)


def read_history(workdir) -> list[dict]:
  """A run's metrics.jsonl, one dict a line."""
  import json

  lines = (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()
  return [json.loads(l) for l in lines]


def computed_history(workdir) -> list[dict]:
  """A run's metrics.jsonl without the wall time: what two runs that computed the same
  (a straight run and one stopped and resumed) share."""
  return [{k: v for k, v in h.items() if k != "time"} for h in read_history(workdir)]


def read_results(workdir) -> dict:
  """A run's results.json."""
  import json

  return json.loads((pathlib.Path(workdir) / "results.json").read_text())
