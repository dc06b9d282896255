"""A sweep's summary: per point the mean ± std, 95% t-interval and n of its metric and of
val and test accuracy (summary.csv, summary.md), and the metric plotted against the
first axis (<metric>.png). The best point is picked on val, never on test."""
from __future__ import annotations

import csv
import os

from digitjax import seed_stats
from experiments.sweep.names import slug


def selection_metric(metric: str) -> str:
  """The val figure a point is picked on: val_loss for a loss, else val_accuracy."""
  return "val_loss" if metric.endswith("loss") else "val_accuracy"


def _figures(metric: str) -> list[str]:
  """What the tables report: the sweep's metric, then val and test accuracy (or loss)."""
  val = selection_metric(metric)
  return list(dict.fromkeys([metric, val, val.replace("val_", "test_")]))


def _cell(stats: dict, digits: int = 4) -> str:
  if not stats["n"]:
    return "-"
  ci = stats["ci"]
  ci = f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else ""
  return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}{ci}"


def aggregate(sweep: dict, rows: list[dict], folder: str) -> str:
  """Writes summary.csv, summary.md and <metric>.png; returns the markdown table."""
  metric, axes = sweep["metric"], list(sweep["axes"])
  figures, select = _figures(metric), selection_metric(metric)
  for row in rows:
    row["stats"] = {m: seed_stats.summarize([s[m] for s in row["per_seed"]
                                            if s.get(m) is not None]) for m in figures}
    mine = row["stats"][metric]
    row.update(n=mine["n"], mean=mine["mean"], std=mine["std"], ci=mine["ci"],
               values=[s[metric] for s in row["per_seed"] if s.get(metric) is not None])
  scored = [r for r in rows if r["stats"][select]["n"]]
  best = (min if select == "val_loss" else max)(
      scored, key=lambda r: r["stats"][select]["mean"]) if scored else None
  num = lambda x: "" if x != x else f"{x:.6f}"  # nan (no value) -> empty cell
  with open(os.path.join(folder, "summary.csv"), "w", newline="") as f:
    w = csv.writer(f)
    others = [m for m in figures if m != metric]
    w.writerow(axes + [f"{metric}_mean", f"{metric}_std", "n", "values",
                       f"{metric}_ci95_low", f"{metric}_ci95_high"] +
               [f"{m}_{k}" for m in others for k in ("mean", "std", "ci95_low", "ci95_high")] +
               [f"best_on_{select}"])
    for row in rows:
      ci = lambda m: row["stats"][m]["ci"] or (float("nan"), float("nan"))
      w.writerow([slug(row["setting"][a]) for a in axes] +
                 [num(row["mean"]), num(row["std"]), row["n"],
                  " ".join(f"{v:.6f}" for v in row["values"]), *map(num, ci(metric))] +
                 [num(x) for m in others for x in (row["stats"][m]["mean"],
                                                   row["stats"][m]["std"], *ci(m))] +
                 ["yes" if row is best else ""])
  lines = [f"# Sweep {sweep['name']}: mean ± std [95% CI] over seeds", "",
           f"The best point is picked on {select} (mean over seeds); test is reported, never "
           "used to pick.", "",
           "| " + " | ".join(axes + figures) + f" | best on {select} | n |",
           "|" + "---|" * (len(axes) + len(figures) + 2)]
  for row in rows:
    lines.append("| " + " | ".join([slug(row["setting"][a]) for a in axes] +
                                   [_cell(row["stats"][m]) for m in figures]) +
                 f" | {'best' if row is best else ''} | {row['n']} |")
  if best is not None:
    lines += ["", f"Best on {select}: {best['name']} (" + ", ".join(
        f"{m} {_cell(best['stats'][m])}" for m in figures) + ")."]
  table = "\n".join(lines) + "\n"
  with open(os.path.join(folder, "summary.md"), "w") as f:
    f.write(table)
  plot(sweep, rows, os.path.join(folder, f"{metric}.png"), best)
  return table


def _numeric(values) -> bool:
  return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def figure(sweep, rows, best=None):
  """The metric (mean, 95% CI bars) against the first axis, one line per value of the
  other axes. A numeric axis is spaced by value (log scale when its values span more
  than a decade, all positive); any other axis is categorical, in the sweep's order.
  `best` (one of rows), the point picked on val, is ringed: the plot shows the sweep's
  metric, often test, and the point it would pick on test need not be that one."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  axes = list(sweep["axes"])
  first, rest = axes[0], axes[1:]
  values = list(sweep["axes"][first])
  numeric = _numeric(values)
  groups = {}
  for row in rows:
    key = tuple(slug(row["setting"][a]) for a in rest)
    groups.setdefault(key, []).append(row)
  fig, ax = plt.subplots(figsize=(7, 4))
  labels = [slug(v) for v in values]
  for key, group in groups.items():
    if numeric:
      x = [float(r["setting"][first]) for r in group]
    else:
      x = [labels.index(slug(r["setting"][first])) for r in group]
    yerr = [[r["mean"] - r["ci"][0] if r.get("ci") else 0 for r in group],
            [r["ci"][1] - r["mean"] if r.get("ci") else 0 for r in group]]
    ax.errorbar(x, [r["mean"] for r in group], yerr=yerr, marker="o",
                capsize=3, label=", ".join(f"{a}={v}" for a, v in zip(rest, key)) or None)
  if numeric:
    positive = all(v > 0 for v in values)
    if positive and max(values) / min(values) > 10:
      ax.set_xscale("log")
    ax.set_xticks([float(v) for v in values], labels)
    ax.minorticks_off()
  else:
    ax.set_xticks(range(len(labels)), labels)
  if best is not None:
    x = float(best["setting"][first]) if numeric else labels.index(slug(best["setting"][first]))
    ax.plot([x], [best["mean"]], "o", markersize=14, markerfacecolor="none",
            markeredgecolor="C3", markeredgewidth=2, linestyle="",
            label=f"picked on {selection_metric(sweep['metric'])}: {best['name']}")
  ax.set_xlabel(first)
  ax.set_ylabel(sweep["metric"])
  ax.set_title(f"{sweep['name']} (mean, 95% CI over {sweep['seeds']} seeds)")
  if rest or best is not None:
    ax.legend(fontsize=8)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  return fig


def plot(sweep, rows, path, best=None):
  import matplotlib.pyplot as plt

  fig = figure(sweep, rows, best)
  fig.savefig(path, dpi=100)
  plt.close(fig)
