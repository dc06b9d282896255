"""Statistics over seeds: t-based 95% intervals, Welch's and the paired t-test,
experiments.compare."""
import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from conftest import ROOT
from digitjax import reporting
from digitjax import seed_stats
from experiments import compare


def test_t_interval_is_mean_plus_minus_t_times_standard_error():
  low, high = seed_stats.t_interval(99.0, 0.1, 3)
  assert high - 99.0 == pytest.approx(4.302653 * 0.1 / np.sqrt(3), rel=1e-6)
  assert 99.0 - low == pytest.approx(high - 99.0)
  assert seed_stats.t_interval(99.0, 0.0, 1) is None  # one seed: no interval
  s = seed_stats.summarize([0.97, 0.98, 0.99])
  assert (s["n"], s["mean"], s["std"]) == (3, pytest.approx(0.98), pytest.approx(0.01))
  assert s["ci"] == pytest.approx((0.98 - 0.024841, 0.98 + 0.024841), abs=1e-6)


def test_welch_matches_scipy_and_gives_the_difference_with_its_interval():
  a, b = [99.46, 99.39, 99.43], [99.53, 99.32, 99.49, 99.50]
  w = seed_stats.welch(a, b)
  ref = stats.ttest_ind(b, a, equal_var=False)
  assert w["t"] == pytest.approx(ref.statistic) and w["p"] == pytest.approx(ref.pvalue)
  assert w["dof"] == pytest.approx(ref.df)
  ci = ref.confidence_interval(0.95)
  assert w["diff"] == pytest.approx(np.mean(b) - np.mean(a))
  assert w["diff_ci"] == pytest.approx((ci.low, ci.high))
  # from summaries alone (a committed table row): the same test
  s = seed_stats.welch(seed_stats.summarize(a), seed_stats.summarize(b))
  assert s["t"] == pytest.approx(w["t"]) and s["p"] == pytest.approx(w["p"])
  with pytest.raises(ValueError, match="at least 2 values"):
    seed_stats.welch([1.0], [1.0, 2.0])


def test_the_multi_seed_summary_line_has_the_interval():
  per_seed = [dict(test_accuracy=v) for v in (0.97, 0.98, 0.99)]
  line = reporting.test_summary(seed_stats.combine_seeds(
      [dict(p, seed=k) for k, p in enumerate(per_seed)]))
  assert line == "accuracy 98.00% ± 1.00 (95% CI 95.52%-100.48%) over 3 seeds"


def _workdir(path, per_seed):
  path.mkdir(parents=True)
  (path / "config.json").write_text("{}")
  (path / "results.json").write_text(json.dumps(dict(per_seed=per_seed)))


def test_compare_two_folders_of_seeds(tmp_path):
  """A vmapped workdir (one results.json, 3 seeds) against one workdir per seed: the same
  seeds, so the paired t-test; other seeds: Welch's. Each checked against scipy."""
  _workdir(tmp_path / "a", [dict(seed=k, test_accuracy=v) for k, v in
                            enumerate([0.990, 0.991, 0.992])])
  for k, v in enumerate([0.980, 0.982, 0.981]):
    _workdir(tmp_path / "b" / f"seed{k}", [dict(seed=k, test_accuracy=v)])
  out = compare.compare(str(tmp_path / "a"), str(tmp_path / "b"))
  a, b = [99.0, 99.1, 99.2], [98.0, 98.2, 98.1]
  ref = stats.ttest_rel(b, a)
  ci = ref.confidence_interval(0.95)
  assert "A: n 3, mean 99.1000, std 0.1000, 95% CI [98.8516, 99.3484]" in out
  assert "B: n 3, mean 98.1000" in out
  assert (f"B - A: -1.0000, 95% CI [{ci.low:+.4f}, {ci.high:+.4f}] (mean of the per-seed "
          "differences, seeds 0-2), Hedges' g -8.00") in out
  assert ("Paired t-test on the per-seed differences B - A (both sides hold seeds 0-2; "
          f"scipy.stats.ttest_rel): t {ref.statistic:.3f}, dof 2.00, p {ref.pvalue:.4f} "
          "(significant at the 5% level)") in out
  assert "Welch" not in out
  # --unpaired, or other seeds on one side: Welch's t-test, saying why
  welch = stats.ttest_ind(b, a, equal_var=False)
  wci = welch.confidence_interval(0.95)
  forced = compare.compare(str(tmp_path / "a"), str(tmp_path / "b"), unpaired=True)
  assert (f"B - A: -1.0000, 95% CI [{wci.low:+.4f}, {wci.high:+.4f}] (difference of the "
          "means, Welch), Hedges' g -8.00") in forced
  assert ("Welch's t-test (unpaired: --unpaired; scipy.stats.ttest_ind, equal_var=False): "
          f"t {welch.statistic:.3f}, dof {welch.df:.2f}, p {welch.pvalue:.4f} "
          "(significant at the 5% level)") in forced
  _workdir(tmp_path / "b" / "seed5", [dict(seed=5, test_accuracy=0.983)])
  other = compare.compare(str(tmp_path / "a"), str(tmp_path / "b"))
  ref = stats.ttest_ind([98.0, 98.2, 98.1, 98.3], a, equal_var=False)
  assert ("Welch's t-test (unpaired: the sides hold different seeds (A: seeds 0-2; B: "
          f"seeds 0, 1, 2, 5); scipy.stats.ttest_ind, equal_var=False): t "
          f"{ref.statistic:.3f}, dof {ref.df:.2f}, p {ref.pvalue:.4f}") in other


def test_paired_matches_scipy_on_known_numbers_and_says_not_significant():
  a = {0: 99.46, 1: 99.39, 2: 99.43, 3: 99.41}
  b = {0: 99.50, 1: 99.38, 2: 99.49, 3: 99.40}
  p = compare.paired(a, b)
  ref = stats.ttest_rel(list(b.values()), list(a.values()))
  assert (p["t"], p["p"], p["dof"]) == (pytest.approx(ref.statistic),
                                         pytest.approx(ref.pvalue), 3)
  assert p["diff_ci"] == pytest.approx(tuple(ref.confidence_interval(0.95)))
  assert p["diff"] == pytest.approx(0.0200) and p["p"] > 0.05
  assert compare.why_unpaired(a, b, False) is None
  assert compare.why_unpaired(a, None, False).startswith("side B is a table's summary")
  with pytest.raises(ValueError, match="the same 2 or more seeds"):
    compare.paired(a, {0: 1.0, 1: 2.0})
  same_shift = compare.paired({0: 1.0, 1: 2.0}, {0: 1.5, 1: 2.5})  # no spread: t undefined
  assert same_shift["diff"] == 0.5 and same_shift["p"] == 0.0


def test_compare_reproduce_rows_and_refuse_what_it_cannot_read(tmp_path):
  r = subprocess.run([sys.executable, "-m", "experiments.compare", "B6", "B6a",
                      "--workroot", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
  assert r.returncode == 0, r.stderr
  assert "A = B6: experiments/results/B.csv" in r.stdout
  assert ("Welch's t-test (unpaired: side A is a table's summary, not per-seed figures; "
          "scipy.stats.ttest_ind, equal_var=False): t") in r.stdout
  # rows with per-seed lines in the committed ledger pair them, seed by seed
  r = subprocess.run([sys.executable, "-m", "experiments.compare", "D3", "D4",
                      "--workroot", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
  assert r.returncode == 0, r.stderr
  assert "A = D3: experiments/results/seeds.csv" in r.stdout
  assert "Paired t-test on the per-seed differences B - A (both sides hold seeds" in r.stdout
  r = subprocess.run([sys.executable, "-m", "experiments.compare", "B6", str(tmp_path)],
                     cwd=ROOT, capture_output=True, text=True)
  assert r.returncode == 2 and "no finished run with test_accuracy" in r.stderr
  assert "Traceback" not in r.stderr
