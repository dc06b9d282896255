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
  assert r["tflop"] == pytest.approx(6 * 7_840 * (54_000 + 6_000 / 3) / 1e12)
  assert r["tflops"] == pytest.approx(r["tflop"] / r["epoch_s"])


def test_projects_a_rows_counted_work_at_another_devices_rate(tmp_path, capsys):
  """--rate sizes a device call from here: A1 is one Dense 784 -> 10, 6 x 7,840 FLOPs a
  training sample, over 54,000 train images and a forward pass over 6,000 val images,
  plus 421 steps of batch 128 at --step-ms each."""
  out = tmp_path / "work.json"
  epoch_cost.main(["--rows", "A1", "--rate", "2", "--step-ms", "3", "--json", str(out)])
  (r,) = json.loads(out.read_text())
  tflop = 6 * 7_840 * (54_000 + 6_000 / 3) / 1e12
  assert r["tflop"] == pytest.approx(tflop)
  assert r["epoch_s"] == pytest.approx(tflop / 2 + 421 * 0.003)
  assert "| A1 | 128 | 0.00 | 1.26 | 20 | 0.4 |" in capsys.readouterr().out


@pytest.mark.parametrize("args,message", [(["--rate", "-1"], "give positive figures"),
                                          (["--step-ms", "2"], "give both, or neither")])
def test_a_bad_projection_is_a_usage_error(capsys, args, message):
  with pytest.raises(SystemExit) as e:
    epoch_cost.main(["--rows", "A1", *args])
  assert e.value.code == 2 and message in capsys.readouterr().err


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
