"""What made a run is recorded: results.json and config.json carry the command line (its
config file and overrides), the code's commit (and a hash of its changes when dirty),
Python's and the libraries' versions, the device and CPU, the dataset, the date and the
host; results.json always holds every seed's figures and their aggregate."""
import json
import re

from conftest import MOCK_TINY, mock_cli
from digitjax import provenance


def _check(record: dict) -> None:
  assert re.fullmatch(r"[0-9a-f]{40}", record["commit"])  # the tests run in a checkout
  assert isinstance(record["dirty"], bool)
  assert set(record["versions"]) == set(provenance.PACKAGES)
  assert record["versions"]["jax"] and record["versions"]["numpy"]
  assert record["device_kind"] and record["device_count"] >= 1
  assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", record["date"])
  assert record["host"] and record["cpu"] and re.fullmatch(r"3\.\d+\.\d+", record["python"])
  assert record["command"].startswith("python -m digitjax.main ")
  assert "--config.num_epochs=1" in record["overrides"] and record["config_file"]
  assert record["dataset"]["name"] == "mnist"  # npz data: no prepared TFDS version


def test_results_and_config_record_provenance_and_per_seed(tmp_path):
  workdir = tmp_path / "run"
  r = mock_cli(tmp_path, *MOCK_TINY, "--config.num_epochs=1", f"--workdir={workdir}")
  assert r.returncode == 0, r.stderr
  results = json.loads((workdir / "results.json").read_text())
  config = json.loads((workdir / "config.json").read_text())
  _check(results["provenance"])
  _check(config["provenance"])
  [seed] = results["per_seed"]  # one seed: still a list, and the aggregate beside it
  assert results["seeds"] == [0] and seed["test_accuracy"] == results["test_accuracy"]
  assert results["test_accuracy_std"] == 0.0
  assert sum(map(sum, results["confusion_matrix"])) == results["test_examples"]
  # the record is not part of the run's identity: the same command resumes, not refuses
  again = mock_cli(tmp_path, *MOCK_TINY, "--config.num_epochs=1", f"--workdir={workdir}")
  assert again.returncode == 0, again.stderr


def test_a_dirty_tree_records_a_hash_of_its_changes(monkeypatch):
  """Two dirty runs can be told apart by what their changes were, not just 'dirty'."""
  outputs = {"rev-parse": "a" * 40, "status": " M digitjax/train.py", "diff": "+x = 1\n"}
  monkeypatch.setattr(provenance, "_git", lambda *args: outputs[args[0]])
  dirty = provenance.code.__wrapped__()
  outputs["diff"] = "+x = 2\n"
  other = provenance.code.__wrapped__()
  assert dirty["dirty"] and len(dirty["diff_sha256"]) == 16
  assert dirty["diff_sha256"] != other["diff_sha256"]
  outputs["status"] = ""
  assert "diff_sha256" not in provenance.code.__wrapped__()
