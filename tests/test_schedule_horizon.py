"""A schedule spanning num_epochs (cosine) is never silently restarted by a larger
num_epochs on resume (issue #22: lr went 5e-3 -> 0, then back up to 1.46e-3); a constant
one resumes and trains on."""
import json

from conftest import MOCK_TINY, mock_cli, tiny_config
from digitjax import main
from experiments.reproduce import runner


def _epochs(workdir):
  return [json.loads(l)["epoch"] for l in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_cosine_run_refuses_another_num_epochs_with_one_line(tmp_path):
  run, cosine = tmp_path / "run", "--config.optimizer.schedule=cosine"
  first = mock_cli(tmp_path, *MOCK_TINY, cosine, "--config.num_epochs=1", f"--workdir={run}")
  assert first.returncode == 0, first.stderr
  longer = mock_cli(tmp_path, *MOCK_TINY, cosine, "--config.num_epochs=2", f"--workdir={run}")
  assert longer.returncode == 2, longer.stderr
  errors = [l for l in longer.stderr.splitlines() if l.startswith("error:")]
  assert errors == [
      f"error: workdir {run} was trained with num_epochs=1 under the cosine learning-rate "
      "schedule, which spans num_epochs: resuming with num_epochs=2 would restart that "
      "schedule mid-run. Keep --config.num_epochs=1, or train the longer schedule from "
      "scratch with --fresh (the old run is set aside) or another --workdir."]
  assert "Traceback" not in longer.stderr
  assert _epochs(run) == [1]  # nothing trained or rewritten
  assert json.loads((run / "config.json").read_text())["num_epochs"] == 1


def test_constant_schedule_resumes_with_more_epochs(tmp_path, no_prepared_data, capsys):
  c = tiny_config(**{"batch_size": 50, "num_epochs": 1})
  with runner.mock_tfds(num_examples=600):
    main.run(c, str(tmp_path))
    c.num_epochs = 2
    results = main.run(c, str(tmp_path))
  assert "Resuming from" in capsys.readouterr().out
  assert _epochs(tmp_path) == [1, 2] and results["epochs_run"] == 2
