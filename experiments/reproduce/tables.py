"""experiments/results/<report>.md, .csv and .png: a report's rows beside its published
figures, as tables and as a picture (`figure`).

The CSV has every column; the markdown page shows the same figures compactly. The verdict
rule is REPORTS.md's, read statistically (`verdict`). A table always lists every row of
its report; rows with no run here keep their figures from the table being replaced
(`previous_rows`), since runs/ is not committed and another machine's runs are not here.
How to read a table: docs/catalogue.md, "Reading the tables".

Why a row's figure differs from the published one is prose, dated and written after the
runs: it lives once, in docs/report_<x>.md under "Row notes" (a `### <row id>` heading per
row), and a table links each row that has one there (`note_link`) rather than copying it.
"""
from __future__ import annotations

import csv
import io
import os
import re
import statistics

from digitjax import seed_stats
from experiments.reproduce import catalogue

VERDICT_RULE = ("verdict: *reproduced* when the published figure lies inside the 95% "
                "t-based confidence interval of our mean over the seeds, *above* / *below* "
                "when that whole interval lies above / below it; no verdict under 3 seeds")


def verdict(published, mean, std, n) -> str:
  """REPORTS.md's verdict, read statistically: the published figure against the 95%
  t-interval of our mean over n seeds (sample std, ddof 1)."""
  if published is None:
    return "no published figure"
  diff = mean - published
  sign = f"{diff:+.2f} pts"
  if n < 3:  # REPORTS.md: mean +- std over at least 3 seeds before a verdict
    return f"{n} seed{'s' if n > 1 else ''}: {sign}, no verdict yet"
  low, high = seed_stats.t_interval(mean, std, n)
  if low <= published <= high:
    return f"reproduced ({sign})"
  return f"{'above' if diff > 0 else 'below'} ({sign})"


def _ci_cell(mean, std, n) -> str:
  """The 95% interval of the mean as 'low-high' (2 decimals); '' below 2 seeds."""
  ci = seed_stats.t_interval(mean, std, n)
  return "" if ci is None else f"{ci[0]:.2f}-{ci[1]:.2f}"


COLUMNS = ("row", "config", "published %", "metric", "weights", "ours mean %", "ours std",
           "ours 95% CI", "seeds", "best-ckpt test %", "epochs", "epochs run", "wall time per run",
           "verdict", "notes")
# The markdown page's compact columns, each drawn from the CSV's columns above; `note`
# links the row's note (the CSV's `notes` holds the same link, from the checkout's root).
MD_COLUMNS = ("row", "config", "published %", "read as", "ours % (seeds)", "95% CI", "best ckpt %",
              "epochs", "wall time per run", "verdict", "note")
NOTES_HEADING = "Row notes"


def notes_page(report: str) -> str:
  """The page that holds a report's row notes, from the checkout's root."""
  return f"docs/report_{report.lower()}.md"


def noted_rows(report: str) -> list[str]:
  """The row ids with a `### <id>` note under the page's "## Row notes", in page order."""
  path = os.path.join(catalogue.ROOT, notes_page(report))
  if not os.path.exists(path):
    return []
  with open(path) as f:
    section = f.read().partition(f"\n## {NOTES_HEADING}\n")[2]
  return re.findall(r"^### (\S+)[ \t]*$", section.split("\n## ")[0], re.M)


def anchor(heading: str) -> str:
  """GitHub's anchor of a markdown heading: E6.1 -> e61, D1-30 -> d1-30."""
  return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def notes_sentence(report: str) -> str:
  """The header's pointer to the page that explains the table and holds its rows' notes."""
  page = notes_page(report)
  target = f"../../{page}" + (f"#{anchor(NOTES_HEADING)}" if noted_rows(report) else "")
  return (f"Each row's note (why it differs from the published figure, what was tried): "
          f"[{page}, {NOTES_HEADING}]({target}); how to read the table: "
          "[docs/catalogue.md](../../docs/catalogue.md#reading-the-tables).")


def note_link(row: catalogue.Row) -> str:
  """docs/report_<x>.md#<row>, where the row has a note there; else ''."""
  if row.id not in noted_rows(row.report):
    return ""
  return f"{notes_page(row.report)}#{anchor(row.id)}"


def _wall_times(runs: list[dict]) -> str:
  """Mean wall time per run, one figure per (device, seeds trained together)."""
  groups = {}
  for r in runs:
    groups.setdefault((r.get("device", "cpu"), r.get("together", 1)), []).append(r)
  parts = []
  for (device, together), rs in groups.items():
    # a program of several seeds has one wall time: count it once
    walls = list({r.get("workdir", id(r)): r["wall_seconds"] for r in rs}.values())
    part = f"{statistics.fmean(walls):.0f} s"
    if together > 1:
      part += f" per {together} seeds together"
    if device != "cpu":
      part += f" on {device}"
    parts.append(part)
  return "; ".join(parts)


# What a table row says about runs; the rest (row, config, published figure) comes from
# the catalogue, and the note's link from docs/, every time.
MEASURED = ("ours mean %", "ours std", "ours 95% CI", "seeds", "best-ckpt test %", "epochs run",
            "wall time per run", "verdict")


def previous_rows(out_dir: str, report: str) -> dict[str, dict]:
  """The measured rows of the table already in out_dir, by row id ({} if none).

  Runs live in runs/, which a fresh clone (or another machine) does not have; without
  these, rewriting a table there would blank every row it did not run itself.
  """
  path = os.path.join(out_dir, f"{report}.csv")
  if not os.path.exists(path):
    return {}
  with open(path, newline="") as f:
    return {r["row"]: r for r in csv.DictReader(f) if r.get("ours mean %")}


def table_rows(entries: list[dict], is_quick: bool,
               previous: dict[str, dict] | None = None) -> tuple[list[dict], list[str]]:
  """The table's rows, and the ids of those whose figures were kept from `previous`:
  rows with no finished run here whose previous row had the same config and figure (a
  config edited under the same name leaves seeds.csv lines of another identity: those
  rows are not kept)."""
  out, kept = [], []
  for e in entries:
    old = (previous or {}).get(e["id"])
    if (not e["runs"] and not e.get("superseded") and old and old["config"] == e["config"]
        and old["published %"] == ("" if e["published"] is None else f"{e['published']:.2f}")):
      out.append(_kept_row(e, old, is_quick))
      kept.append(e["id"])
    else:
      out.append(_measured_row(e, is_quick))
  return out, kept


def _kept_row(e: dict, old: dict, is_quick: bool) -> dict:
  """A previous table's figures for a row with no run here; the rest from the catalogue."""
  row = {**{c: old.get(c, "") for c in COLUMNS}, "epochs": str(e["epochs"]),
         "metric": e["metric"], "notes": e.get("notes", "")}
  if not is_quick:  # the interval and verdict under today's rule, from the kept figures
    mean, std, n = float(old["ours mean %"]), float(old["ours std"] or 0), int(old["seeds"])
    row["ours 95% CI"] = _ci_cell(mean, std, n)
    row["verdict"] = verdict(e["published"], mean, std, n)
  return row


def _measured_row(e: dict, is_quick: bool) -> dict:
  """A row's figures from its runs (none: its status, e.g. pending data, in the verdict)."""
  accs = [r["accuracy"] for r in e["runs"]]
  n = len(accs)
  mean = statistics.fmean(accs) if accs else None
  std = statistics.stdev(accs) if n >= 2 else 0.0
  if not accs:
    v = e["status"]
  elif is_quick:
    v = "quick run: not comparable" + (f" ({e['status']})" if e["status"] else "")
  else:
    v = verdict(e["published"], mean, std, n)
  return {
      "row": e["id"], "config": e["config"],
      "published %": "" if e["published"] is None else f"{e['published']:.2f}",
      "metric": e["metric"],
      "weights": "best val" if e["metric"] == "val" else e["weights"],
      "ours mean %": "" if mean is None else f"{mean:.2f}",
      "ours std": "" if mean is None else f"{std:.2f}",
      "ours 95% CI": "" if mean is None else _ci_cell(mean, std, n),
      "seeds": str(n),
      "best-ckpt test %": (f"{statistics.fmean(r['best_checkpoint'] for r in e['runs']):.2f}"
                           if accs else ""),
      "epochs": str(e["epochs"]),
      "epochs run": ",".join(str(r["epochs_run"]) for r in e["runs"]),
      "wall time per run": _wall_times(e["runs"]),
      "verdict": v, "notes": e.get("notes", "")}


def _md_cells(r: dict) -> list[str]:
  """A CSV row as the page's compact cells: the same figures, laid out shorter."""
  ours = r["ours mean %"]
  if ours:
    ours = f"{ours} ± {r['ours std']} ({r['seeds']})"
  epochs = r["epochs"]
  if r["epochs run"] and set(r["epochs run"].split(",")) != {r["epochs"]}:
    epochs = f"{r['epochs run']} of {r['epochs']}"
  read_as = r["metric"] if r["weights"] == "best val" else f"{r['metric']}, {r['weights']}"
  note = f"[note](../../{r['notes']})" if r["notes"] else ""  # the page is in experiments/results
  return [r["row"], f"`{r['config'].removeprefix('configs/')}`", r["published %"], read_as,
          ours, r["ours 95% CI"], r["best-ckpt test %"], epochs, r["wall time per run"],
          r["verdict"], note]


def markdown(report: str, rows: list[dict], note: str) -> str:
  """One report's page: a short header, then a compact table whose rows link their notes."""
  body = ["| " + " | ".join(c.replace("|", "/") for c in _md_cells(r)) + " |" for r in rows]
  lines = [f"# Report {report}: reproduction", "", note, "",
           "| " + " | ".join(MD_COLUMNS) + " |", "|" + "---|" * len(MD_COLUMNS), *body]
  return "\n".join(lines) + "\n"


def write_tables(report: str, rows: list[dict], out_dir: str, note: str) -> tuple[str, str]:
  """Writes <out_dir>/<report>.md and .csv; their paths."""
  os.makedirs(out_dir, exist_ok=True)
  md_path = os.path.join(out_dir, f"{report}.md")
  csv_path = os.path.join(out_dir, f"{report}.csv")
  with open(md_path, "w") as f:
    f.write(markdown(report, rows, note))
  buf = io.StringIO()
  writer = csv.DictWriter(buf, fieldnames=COLUMNS)
  writer.writeheader()
  writer.writerows(rows)
  with open(csv_path, "w") as f:
    f.write(buf.getvalue())
  return md_path, csv_path


def _ci(cell: str):
  """The table's '95% CI' cell ('low-high') as two floats; None where it is empty."""
  m = re.fullmatch(r"(-?[\d.]+)-(-?[\d.]+)", cell or "")
  return (float(m.group(1)), float(m.group(2))) if m else None


def _strip(ax, r: dict, seeds: list[float]) -> None:
  """One row: its published figure (red line), our mean with its 95% CI (black), each
  seed (grey dots); the verdict, or why there is no figure, at its right."""
  from matplotlib.ticker import MaxNLocator

  published = float(r["published %"]) if r["published %"] else None
  mean = float(r["ours mean %"]) if r["ours mean %"] else None
  ci = _ci(r["ours 95% CI"])
  if published is not None:
    ax.axvline(published, color="C3", linewidth=2)
  if seeds:
    ax.plot(seeds, [-0.35] * len(seeds), "o", color="0.55", markersize=3.5)
  if mean is not None:
    err = [[mean - ci[0]], [ci[1] - mean]] if ci else None
    ax.errorbar([mean], [0], xerr=err, fmt="o", color="black", markersize=4, capsize=3)
  xs = [x for x in (published, mean, *(ci or ()), *seeds) if x is not None]
  if mean is None:  # nothing to set the published figure against: say it in words
    ax.set_xlim(0, 1)
    ax.set_xticks([])
    ax.text(0.51, 0.5, f"published {published:.2f}%" if published is not None else
            "no published figure, not run", fontsize=8, va="center", transform=ax.transAxes)
  else:
    pad = max(0.12 * (max(xs) - min(xs)), 0.1)
    ax.set_xlim(min(xs) - pad, max(xs) + pad)
    ax.xaxis.set_major_locator(MaxNLocator(5))
  ax.set_ylim(-0.8, 0.6)
  ax.set_yticks([0], [r["row"]])
  ax.tick_params(axis="x", labelsize=7, pad=1)
  ax.grid(axis="x", alpha=0.3)
  verdict = r["verdict"] if len(r["verdict"]) <= 44 else r["verdict"][:43] + "…"
  ax.text(1.02, 0.5, verdict, transform=ax.transAxes, va="center", fontsize=8)


def figure(report: str, rows: list[dict], entries: list[dict]):
  """The report as a picture: a strip per row, each on its own scale (a report's rows
  span 30-99%, their intervals tenths of a point), so that each published figure can be
  seen against our mean, its 95% CI and the seeds it came from. Seed dots are those the
  table was made from here (runs and seeds.csv); a row kept from an older table has its
  mean and CI but no dots, and a row never run only its published figure, in words."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from matplotlib.lines import Line2D

  seeds = {e["id"]: [run["accuracy"] for run in e["runs"]] for e in entries}
  top, bottom, per_row = 0.8, 0.75, 0.62  # inches
  height = top + bottom + per_row * len(rows)
  fig, axes = plt.subplots(len(rows), 1, figsize=(8, height), squeeze=False)
  for ax, r in zip(axes[:, 0], rows):
    _strip(ax, r, seeds.get(r["row"], []))
  fig.subplots_adjust(left=0.15, right=0.68, top=1 - top / height, bottom=bottom / height,
                      hspace=0.3 / (per_row - 0.3))
  handles = [Line2D([], [], color="C3", linewidth=2, label="published"),
             Line2D([], [], color="black", marker="o", label="ours: mean, 95% CI"),
             Line2D([], [], color="0.55", marker="o", linestyle="", markersize=3.5,
                    label="ours: each seed")]
  fig.suptitle(f"Report {report}: published figures against ours", x=0.42,
               y=1 - 0.1 / height, va="top", fontsize=11)
  fig.legend(handles=handles, loc="upper center", ncol=3, fontsize=8, frameon=False,
             bbox_to_anchor=(0.42, 1 - 0.38 / height))
  kept = [r["row"] for r in rows if r["ours mean %"] and not seeds.get(r["row"])]
  fig.text(0.02, 0.12 / height, "accuracy (%), each row on its own scale" + (
      f"; no seed dots: {', '.join(kept)} kept from the committed table (no per-seed "
      "lines in seeds.csv)" if kept else ""), fontsize=7.5, wrap=True)
  return fig


def write_figure(report: str, rows: list[dict], entries: list[dict], out_dir: str) -> str:
  """<out_dir>/<report>.png (100 dpi: a few tens of kB to commit); its path."""
  import matplotlib.pyplot as plt

  path = os.path.join(out_dir, f"{report}.png")
  fig = figure(report, rows, entries)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
