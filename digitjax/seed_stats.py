"""Statistics over seeds: a run's per-seed figures combined (means, stds), confidence
intervals, and Welch's test with Hedges' g for comparing two sets of seeds.

Kept in one place so results.json, the tables, the sweeps and experiments.compare state
their uncertainty the same way (Student's t intervals, ddof 1).
"""
from __future__ import annotations

import numpy as np


SEED_STATS = ("test_loss", "test_accuracy", "test_accuracy_last_epoch", "val_loss",
              "val_accuracy", "train_loss", "train_accuracy", "epochs_run", "best_epoch")


def combine_seeds(per_seed: list[dict]) -> dict:
  """per_seed, and the mean and standard deviation (ddof=1) over seeds of each headline
  figure. With one seed its own fields (stopped_early, checkpoint_step, ...) are at the
  top too: the aggregate of one seed is that seed."""
  out = dict(per_seed[0]) if len(per_seed) == 1 else {}
  out.update(per_seed=per_seed, seeds=[p["seed"] for p in per_seed])
  for key in SEED_STATS:
    values = [p[key] for p in per_seed if p.get(key) is not None]
    if values:
      out[key] = float(np.mean(values))
      out[key + "_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
  return out


def t_interval(mean: float, std: float, n: int, confidence: float = 0.95):
  """The t-based confidence interval (low, high) of a mean over n seeds with sample
  standard deviation std (ddof 1); None below 2 seeds, where it is undefined."""
  if n < 2:
    return None
  from scipy import stats

  half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * float(std) / float(np.sqrt(n))
  return (float(mean) - half, float(mean) + half)


def summarize(values, confidence: float = 0.95) -> dict:
  """n, mean, std (ddof 1; 0 for one value) and ci (t_interval; None below 2 values)."""
  values = [float(v) for v in values]
  n = len(values)
  mean = float(np.mean(values)) if n else float("nan")
  std = float(np.std(values, ddof=1)) if n > 1 else 0.0
  return dict(n=n, mean=mean, std=std, ci=t_interval(mean, std, n, confidence))


def welch(a, b, confidence: float = 0.95) -> dict:
  """Welch's t-test of mean(b) - mean(a) (scipy.stats.ttest_ind, equal_var=False): each
  side summarized, the difference with its confidence interval, t, dof and p. A side
  may be a list of values or a summary (dict with n, mean, std) when only that is known."""
  from scipy import stats

  sa, sb = (x if isinstance(x, dict) else summarize(x, confidence) for x in (a, b))
  for s in (sa, sb):
    s.setdefault("ci", t_interval(s["mean"], s["std"], s["n"], confidence))
  if sa["n"] < 2 or sb["n"] < 2:
    raise ValueError(f"Welch's t-test needs at least 2 values a side, not {sa['n']} and "
                     f"{sb['n']}")
  va, vb = sa["std"] ** 2 / sa["n"], sb["std"] ** 2 / sb["n"]
  diff = sb["mean"] - sa["mean"]
  se = float(np.sqrt(va + vb))
  if se == 0:  # both sides without spread: t undefined
    return dict(a=sa, b=sb, diff=diff, diff_ci=(diff, diff), t=float("nan"),
                dof=float(sa["n"] + sb["n"] - 2), p=0.0 if diff else 1.0)
  dof = (va + vb) ** 2 / (va ** 2 / (sa["n"] - 1) + vb ** 2 / (sb["n"] - 1))
  if isinstance(a, dict) or isinstance(b, dict):
    test = stats.ttest_ind_from_stats(sb["mean"], sb["std"], sb["n"], sa["mean"], sa["std"],
                                      sa["n"], equal_var=False)
  else:
    test = stats.ttest_ind(b, a, equal_var=False)
  half = float(stats.t.ppf(0.5 + confidence / 2, dof)) * se
  return dict(a=sa, b=sb, diff=diff, diff_ci=(diff - half, diff + half),
              t=float(test.statistic), dof=float(dof), p=float(test.pvalue),
              hedges_g=hedges_g(sa, sb))


def hedges_g(sa: dict, sb: dict) -> float:
  """The difference of means in pooled standard deviations, corrected for small samples
  (Hedges' g): how large a difference is, where p only says how sure. nan without spread."""
  na, nb = sa["n"], sb["n"]
  pooled = np.sqrt(((na - 1) * sa["std"] ** 2 + (nb - 1) * sb["std"] ** 2) / (na + nb - 2))
  if pooled == 0:
    return float("nan")
  return float((sb["mean"] - sa["mean"]) / pooled * (1 - 3 / (4 * (na + nb) - 9)))
