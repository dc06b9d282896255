"""Statistics over seeds: t-based 95% intervals, Welch's t-test, experiments.compare."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from conftest import ROOT
from digitjax import reporting
from experiments import compare


def test_t_interval_is_mean_plus_minus_t_times_standard_error():
  low, high = reporting.t_interval(99.0, 0.1, 3)
  assert high - 99.0 == pytest.approx(4.302653 * 0.1 / np.sqrt(3), rel=1e-6)
  assert 99.0 - low == pytest.approx(high - 99.0)
  assert reporting.t_interval(99.0, 0.0, 1) is None  # one seed: no interval
  s = reporting.summarize([0.97, 0.98, 0.99])
  assert (s["n"], s["mean"], s["std"]) == (3, pytest.approx(0.98), pytest.approx(0.01))
  assert s["ci"] == pytest.approx((0.98 - 0.024841, 0.98 + 0.024841), abs=1e-6)


def test_welch_matches_scipy_and_gives_the_difference_with_its_interval():
  a, b = [99.46, 99.39, 99.43], [99.53, 99.32, 99.49, 99.50]
  w = reporting.welch(a, b)
  ref = stats.ttest_ind(b, a, equal_var=False)
  assert w["t"] == pytest.approx(ref.statistic) and w["p"] == pytest.approx(ref.pvalue)
  assert w["dof"] == pytest.approx(ref.df)
  ci = ref.confidence_interval(0.95)
  assert w["diff"] == pytest.approx(np.mean(b) - np.mean(a))
  assert w["diff_ci"] == pytest.approx((ci.low, ci.high))
  # from summaries alone (a committed table row): the same test
  s = reporting.welch(reporting.summarize(a), reporting.summarize(b))
  assert s["t"] == pytest.approx(w["t"]) and s["p"] == pytest.approx(w["p"])
  with pytest.raises(ValueError, match="at least 2 values"):
    reporting.welch([1.0], [1.0, 2.0])


def test_the_multi_seed_summary_line_has_the_interval():
  per_seed = [dict(test_accuracy=v) for v in (0.97, 0.98, 0.99)]
  line = reporting.test_summary(reporting.combine_seeds(
      [dict(p, seed=k) for k, p in enumerate(per_seed)]))
  assert line == "accuracy 98.00% ± 1.00 (95% CI 95.52%-100.48%) over 3 seeds"


def _workdir(path, per_seed):
  path.mkdir(parents=True)
  (path / "config.json").write_text("{}")
  body = dict(per_seed=per_seed) if len(per_seed) > 1 else per_seed[0]
  (path / "results.json").write_text(json.dumps(body))


def test_compare_two_folders_of_seeds(tmp_path):
  """A vmapped workdir (one results.json, 3 seeds) against one workdir per seed."""
  _workdir(tmp_path / "a", [dict(seed=k, test_accuracy=v) for k, v in
                            enumerate([0.990, 0.991, 0.992])])
  for k, v in enumerate([0.980, 0.982, 0.981]):
    _workdir(tmp_path / "b" / f"seed{k}", [dict(seed=k, test_accuracy=v)])
  out = compare.compare(str(tmp_path / "a"), str(tmp_path / "b"))
  ref = stats.ttest_ind([98.0, 98.2, 98.1], [99.0, 99.1, 99.2], equal_var=False)
  assert "A: n 3, mean 99.1000, std 0.1000, 95% CI [98.8516, 99.3484]" in out
  assert "B: n 3, mean 98.1000" in out and "B - A: -1.0000, 95% CI [" in out
  assert f"t {ref.statistic:.3f}, dof {ref.df:.2f}, p {ref.pvalue:.4f}" in out
  assert "(significant at the 5% level)" in out
  assert "Hedges' g -8.00" in out  # -1.0 / pooled std 0.1, times 1 - 3 / (4 * 6 - 9)


def test_compare_reproduce_rows_and_refuse_what_it_cannot_read(tmp_path):
  r = subprocess.run([sys.executable, "-m", "experiments.compare", "B6", "B6a",
                      "--workroot", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
  assert r.returncode == 0, r.stderr
  assert "A = B6: experiments/results/B.csv" in r.stdout and "Welch's t-test: t" in r.stdout
  r = subprocess.run([sys.executable, "-m", "experiments.compare", "B6", str(tmp_path)],
                     cwd=ROOT, capture_output=True, text=True)
  assert r.returncode == 2 and "no finished run with test_accuracy" in r.stderr
  assert "Traceback" not in r.stderr
