"""experiments/results/<report>.md and .csv: a report's rows beside its published figures.

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

from digitjax import reporting
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
  low, high = reporting.t_interval(mean, std, n)
  if low <= published <= high:
    return f"reproduced ({sign})"
  return f"{'above' if diff > 0 else 'below'} ({sign})"


def _ci_cell(mean, std, n) -> str:
  """The 95% interval of the mean as 'low-high' (2 decimals); '' below 2 seeds."""
  ci = reporting.t_interval(mean, std, n)
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
  rows with no finished run here whose previous row had the same config and figure."""
  out, kept = [], []
  for e in entries:
    old = (previous or {}).get(e["id"])
    if (not e["runs"] and old and old["config"] == e["config"]
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
