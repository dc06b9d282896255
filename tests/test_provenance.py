"""What made a run is recorded: results.json and config.json carry the code's commit,
the library versions, the device, the date and the host; results.json always holds
every seed's figures and their aggregate."""
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
  assert record["host"]


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
