"""experiments/perf/epoch_cost.py: a row's real train step timed on synthetic data."""
import json

import pytest

from experiments.perf import epoch_cost


def test_times_a_rows_real_step_and_projects_its_budget(tmp_path, capsys):
  out = tmp_path / "cost.json"
  epoch_cost.main(["--rows", "A1", "--steps", "2", "--json", str(out)])
  printed = capsys.readouterr().out
  assert "| A1 | 28x28x1 | 128 |" in printed and "load average" in printed
  (r,) = json.loads(out.read_text())
  assert r["budget"] == 20 and r["batch"] == 128 and r["steps_timed"] == 2
  assert r["epoch_s"] == pytest.approx(r["train_s"] + r["eval_s"]) and r["train_s"] > 0


def test_split_sizes_follow_the_config():
  from experiments.reproduce import catalogue
  d3 = catalogue.load_config(catalogue.rows("D", "D3")[0].config)
  e1 = catalogue.load_config(catalogue.rows("E", "E1")[0].config)
  assert epoch_cost.split_sizes(d3) == (40_000, 10_000)  # validation_split 0.2
  assert epoch_cost.split_sizes(e1) == (2_936, 734)  # train[:80%], train[80%:]


def test_unknown_row_is_a_usage_error(capsys):
  with pytest.raises(SystemExit) as e:
    epoch_cost.main(["--rows", "Z9"])
  assert e.value.code == 2 and "no row Z9" in capsys.readouterr().err
