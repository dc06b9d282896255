"""Re-run a report's rows for several seeds and tabulate them beside the published figures.

  python -m experiments.reproduce --report B            # B's rows, 3 seeds each
  python -m experiments.reproduce --report all --quick  # a few steps of every row (CI)
  python -m experiments.reproduce --report D --rows D1-30,D3 --seeds 5
  python -m experiments.reproduce --tabulate            # only rewrite the tables
  python -m experiments.reproduce --report D --rows D1 --heavy --together   # on a GPU

On an accelerator, --together trains a row's missing seeds side by side in one vmapped
program (runs/reproduce/<row>/seeds<a>-<b>); experiments/npz_data.py runs all this on a
machine without TensorFlow.

Each run goes through digitjax.main.run in its own workdir, runs/reproduce/<row>/seed<k>
(the config's seed set to k), so an interrupted reproduction resumes: finished runs are
read back from their results.json, unfinished ones resume from their checkpoint.
Writes experiments/results/<report>.md and .csv (--quick: under runs/reproduce-quick/,
never over the real tables). A table always lists every row of its report: rows not
chosen by --rows are read back from their finished runs under the workroot (any seeds
there), so `--rows B2` and then `--rows B3` build up one table instead of overwriting it.
A row with no run there at all (a fresh clone has no runs/) keeps its figures from the
table being replaced, and the table's note names those rows.

Rows whose dataset is not prepared locally (TFDS builder's is_prepared; nothing is ever
downloaded here) are listed as "pending data" and picked up unchanged once the data is
there; with --quick they run on tfds.testing.mock_data at their real image size instead.
Rows marked heavy in the catalogue (beyond a 2-core CPU) are listed as skipped unless
--heavy is given.

Verdict: over at least 3 seeds (REPORTS.md), "reproduced" when the published figure lies
inside the 95% confidence interval of our mean (t-based: mean +- t(0.975, n-1) * std /
sqrt(n), scipy.stats.t), "above" / "below" when our whole interval lies above or below
it. "below" is the only failing verdict; "above" is welcome.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import statistics
import sys
import time
from unittest import mock

from absl import app, flags, logging

from digitjax import data, reporting
from experiments import catalogue

# --quick: the smallest input each large family accepts (the aux heads of GoogLeNet need
# 99 px, its stem pools being 'valid'; AlexNet's three strided pools 67); everything else
# keeps its real size.
QUICK_IMAGE_SIZE = {"vgg16": 32, "vgg16_app": 32, "alexnet": 72, "googlenet": 99,
                    "flowers_cnn": 48}
MOCK_EXAMPLES = 64


def quick(config):
  """A copy of config cut to a few steps on a tiny subset (CI, tests)."""
  c = config.copy_and_resolve_references()
  c.num_epochs = 1
  c.batch_size = min(c.batch_size, 16)
  c.eval_batch_size = 32
  c.dataset.max_train_examples = 64
  c.dataset.max_test_examples = 32
  if c.model.name in QUICK_IMAGE_SIZE:
    c.dataset.image_size = QUICK_IMAGE_SIZE[c.model.name]
  return c


@contextlib.contextmanager
def mock_tfds(num_examples: int = MOCK_EXAMPLES):
  """tfds.testing.mock_data (random examples at the dataset's real feature shapes), with
  is_prepared() true so digitjax.data reads them instead of refusing to download."""
  import tensorflow_datasets as tfds

  with tfds.testing.mock_data(num_examples=num_examples,
                              policy=tfds.testing.MockPolicy.USE_CODE), \
      mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", lambda self: True):
    yield


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


def run_row(row: catalogue.Row, seeds: int, workroot: str, is_quick: bool,
            heavy: bool, read_only: bool = False, together: bool = False) -> dict:
  """Runs (or reads back) every seed of a row; returns its table entry.

  read_only: run nothing; take whichever seeds of this row finished earlier.
  together: train the seeds still missing as one program (config.num_seeds of them,
  vmapped side by side; replica k is the run of seed config.seed + k), in
  <row>/seeds<a>-<b>. On an accelerator that is several times the throughput of
  one seed after another; on 2 CPU cores it gains nothing.
  """
  from digitjax import main
  from digitjax.errors import UserError

  config = catalogue.load_config(row.config)
  entry = dict(id=row.id, config=row.config, published=row.published, metric=row.metric,
               epochs=row.epochs, weights=row.weights, runs=[], status="", notes=row.notes)
  if is_quick:
    config = quick(config)
  if read_only:
    return _read_back(row, config, workroot, entry)
  if row.heavy and not heavy and not is_quick:
    entry["status"] = "needs a GPU: skipped (--heavy runs it)" + _and_data(config)
    return entry
  context = contextlib.nullcontext()
  if not data.is_prepared(config):
    if not is_quick:
      entry["status"] = f"pending data ({config.dataset.name} not prepared)"
      return entry
    context = mock_tfds()
    entry["status"] = "mock data"
  done = {r["seed"]: r for r in _finished_runs(row, config, workroot)}
  missing = [s for s in range(seeds) if s not in done]
  for block in (_contiguous(missing) if together else [[s] for s in missing]):
    config.seed, config.num_seeds = block[0], len(block)
    workdir = os.path.join(workroot, row.id, _dirname(block))
    try:
      with context:
        result = main.run(config, workdir)
      if result.get("interrupted"):
        entry["status"] = "interrupted: rerun to resume"
        return entry
    except UserError as e:
      entry["status"] = f"error: {str(e).splitlines()[0][:160]}"
      return entry
    done.update((r["seed"], r) for r in _run_entries(row, result, workdir))
  entry["runs"] = [done[s] for s in range(seeds)]
  return entry


def _contiguous(seeds: list[int]) -> list[list[int]]:
  """[0, 1, 3] -> [[0, 1], [3]]: each block is one program of consecutive seeds."""
  blocks = []
  for s in seeds:
    if blocks and blocks[-1][-1] == s - 1:
      blocks[-1].append(s)
    else:
      blocks.append([s])
  return blocks


def _dirname(block: list[int]) -> str:
  return f"seed{block[0]}" if len(block) == 1 else f"seeds{block[0]}-{block[-1]}"


def _run_entries(row, result, workdir) -> list[dict]:
  """One entry per seed of a finished run (one seed, or several trained together)."""
  per_seed = result.get("per_seed") or [result]
  device = result.get("device_kind", "cpu")
  return [_run_entry(row, p["seed"], p, workdir, wall_seconds=result["wall_seconds"],
                     device=device, together=len(per_seed)) for p in per_seed]


def _run_entry(row, seed, result, workdir, wall_seconds=None, device="cpu",
               together=1) -> dict:
  """One seed's figures: the one the report published, read the report's way, and the
  test accuracy of digitjax's best-val_loss checkpoint beside it."""
  if row.metric == "val":  # the best val accuracy over the epochs
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      history = [json.loads(line) for line in f if line.strip()]
    figure = max(h["val_accuracy"] for h in history if h.get("seed", seed) == seed)
  elif row.weights == "last":  # Keras evaluated the weights fit() ended with
    figure = result.get("test_accuracy_last_epoch", result["test_accuracy"])
  else:  # EarlyStopping(restore_best_weights=True): digitjax's best checkpoint
    figure = result["test_accuracy"]
  return dict(seed=seed, accuracy=100 * figure, best_checkpoint=100 * result["test_accuracy"],
              wall_seconds=result["wall_seconds"] if wall_seconds is None else wall_seconds,
              epochs_run=result["epochs_run"], device=device, together=together,
              workdir=workdir)


def _finished_runs(row, config, workroot) -> list[dict]:
  """Entries for every finished seed of row under workroot: seed<k> folders (one seed
  each) and seeds<a>-<b> folders (seeds a..b trained together). Seed order; a seed
  found twice counts once (its one-seed run first)."""
  root = os.path.join(workroot, row.id)
  found = {}
  names = sorted(os.listdir(root)) if os.path.isdir(root) else []
  for name in sorted(names, key=lambda n: n.startswith("seeds")):  # seed<k> first
    m = re.fullmatch(r"seed(\d+)|seeds(\d+)-(\d+)", name)
    if not m:
      continue
    first = int(m.group(1) or m.group(2))
    last = int(m.group(1) or m.group(3))
    if last < first:
      continue
    c = config.copy_and_resolve_references()
    c.seed, c.num_seeds = first, last - first + 1
    workdir = os.path.join(root, name)
    result = _finished(os.path.join(workdir, "results.json"), c)
    if result is not None:
      for run in _run_entries(row, result, workdir):
        found.setdefault(run["seed"], run)
  return [found[s] for s in sorted(found)]


def _and_data(config) -> str:
  """What a heavy row needs besides the GPU: its dataset, where that is not prepared."""
  return "" if data.is_prepared(config) else f"; pending data ({config.dataset.name} not prepared)"


def _read_back(row, config, workroot, entry) -> dict:
  """The finished seeds of row under workroot, without running anything."""
  entry["runs"] = _finished_runs(row, config, workroot)
  if not entry["runs"]:
    if row.heavy:
      entry["status"] = "needs a GPU: not run (--heavy runs it)" + _and_data(config)
    elif not data.is_prepared(config):
      entry["status"] = f"pending data ({config.dataset.name} not prepared)"
    else:
      entry["status"] = "not run yet"
  return entry


def _finished(path: str, config) -> dict | None:
  """results.json of a finished run of this very config, else None (run or resume)."""
  from digitjax import workdir as workdir_lib
  from digitjax.errors import UserError

  workdir = os.path.dirname(path)
  if not os.path.exists(path) or not os.path.exists(os.path.join(workdir, "config.json")):
    return None
  try:
    workdir_lib.check_config(config, workdir)
  except UserError:  # another config, or a damaged config.json: main.run says so
    return None
  result = workdir_lib.read_results(workdir)  # None if damaged: main.run rewrites it
  return result if result and result.get("epochs_run", 0) >= 1 else None


COLUMNS = ("row", "config", "published %", "metric", "weights", "ours mean %", "ours std",
           "ours 95% CI", "seeds", "best-ckpt test %", "epochs", "epochs run", "wall time per run",
           "verdict", "notes")
# The markdown page's compact columns, each drawn from the CSV's columns above; the long
# notes go under the table, numbered.
MD_COLUMNS = ("row", "config", "published %", "read as", "ours % (seeds)", "95% CI", "best ckpt %",
              "epochs", "wall time per run", "verdict", "note")


def _notes(entry: dict) -> str:
  """The row's notes, and while it has no run, what one seed costs here."""
  notes = [entry.get("notes", "")]
  if not entry["runs"] and entry["id"] in catalogue.COST:
    notes.append(f"not run yet: {catalogue.COST[entry['id']]}")
  return "; ".join(n for n in notes if n)


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


# What a table row says about runs; the rest (row, config, published figure, notes) comes
# from the catalogue every time.
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
      kept_row = {**{c: old.get(c, "") for c in COLUMNS}, "epochs": str(e["epochs"]),
                  "metric": e["metric"], "notes": e.get("notes", "")}
      if not is_quick:  # the interval and verdict under today's rule, from the kept figures
        mean, std, n = float(old["ours mean %"]), float(old["ours std"] or 0), int(old["seeds"])
        kept_row["ours 95% CI"] = _ci_cell(mean, std, n)
        kept_row["verdict"] = verdict(e["published"], mean, std, n)
      out.append(kept_row)
      kept.append(e["id"])
      continue
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
    out.append({
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
        "verdict": v, "notes": _notes(e)})
  return out, kept


def _md_cells(r: dict, note: str) -> list[str]:
  """A CSV row as the page's compact cells: the same figures, laid out shorter."""
  ours = r["ours mean %"]
  if ours:
    ours = f"{ours} ± {r['ours std']} ({r['seeds']})"
  epochs = r["epochs"]
  if r["epochs run"] and set(r["epochs run"].split(",")) != {r["epochs"]}:
    epochs = f"{r['epochs run']} of {r['epochs']}"
  read_as = r["metric"] if r["weights"] == "best val" else f"{r['metric']}, {r['weights']}"
  return [r["row"], f"`{r['config'].removeprefix('configs/')}`", r["published %"], read_as,
          ours, r["ours 95% CI"], r["best-ckpt test %"], epochs, r["wall time per run"], r["verdict"], note]


def markdown(report: str, rows: list[dict], note: str) -> str:
  """One report's page: a short header, a compact table, then the rows' notes numbered
  under it (a note shared by several rows is written once, under one number)."""
  numbers: dict[str, int] = {}
  body = []
  for r in rows:
    text = r["notes"].strip()
    if text and text not in numbers:
      numbers[text] = len(numbers) + 1
    cells = _md_cells(r, str(numbers[text]) if text else "")
    body.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
  lines = [f"# Report {report}: reproduction", "", note, "",
           "| " + " | ".join(MD_COLUMNS) + " |", "|" + "---|" * len(MD_COLUMNS), *body]
  if numbers:
    lines += ["", "Notes:", ""] + [f"{n}. {text}" for text, n in numbers.items()]
  return "\n".join(lines) + "\n"


def write_tables(report: str, rows: list[dict], out_dir: str, note: str) -> tuple[str, str]:
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


class Outcome(dict):
  """{report: md path} of the tables written, and what became of the rows chosen to run:
  `ran` (row ids with runs), `failed` and `not_run` ((row id, status) pairs)."""

  def __init__(self):
    super().__init__()
    self.ran, self.failed, self.not_run = [], [], []

  def record(self, entry: dict):
    status = entry["status"]
    if status.startswith(("error", "interrupted")):
      self.failed.append((entry["id"], status))
    elif entry["runs"]:
      self.ran.append(entry["id"])
    else:
      self.not_run.append((entry["id"], status))

  def problem(self) -> str | None:
    """Why the command should exit non-zero: a row failed, or none of the chosen rows
    could run (every one pending data, needing a GPU, ...). None when all is well."""
    if self.failed:
      return "rows failed: " + "; ".join(f"{r}: {s}" for r, s in self.failed)
    if self.not_run and not self.ran:
      return ("no chosen row could run: " + "; ".join(f"{r}: {s}" for r, s in self.not_run)
              + ". Point TFDS_DATA_DIR at prepared datasets, or pass --heavy on a GPU.")
    return None


def reproduce(report: str = "all", seeds: int = 3, rows: str | None = None,
              is_quick: bool = False, heavy: bool = False, workroot: str | None = None,
              out_dir: str | None = None, tabulate: bool = False,
              together: bool = False) -> dict[str, str]:
  """Runs the chosen rows and writes one table per report; returns {report: md path}.

  tabulate: run nothing, only rewrite the tables from the finished runs.
  together: each row's missing seeds train as one vmapped program (see run_row).
  """
  from digitjax.errors import UserError

  if seeds < 1:
    raise UserError(f"--seeds={seeds}: at least one seed is needed.")
  chosen = catalogue.rows(report, rows)
  workroot = workroot or os.path.join("runs", "reproduce-quick" if is_quick else "reproduce")
  out_dir = out_dir or (os.path.join(workroot, "results") if is_quick
                        else os.path.join(catalogue.ROOT, "experiments", "results"))
  written = Outcome()
  for rep in catalogue.REPORTS:
    mine = [r for r in chosen if r.report == rep]
    if not mine:
      continue
    t0 = time.time()
    entries = []
    for row in catalogue.rows(rep):
      if row in mine and not tabulate:
        print(f"== {row.id} ({row.config})", flush=True)
      entries.append(run_row(row, seeds, workroot, is_quick, heavy,
                             read_only=tabulate or row not in mine, together=together))
      if row in mine and not tabulate:
        written.record(entries[-1])
    command = (f"python -m experiments.reproduce --report {rep}"
               f"{' --rows ' + rows if rows else ''}"
               f"{'' if tabulate else f' --seeds {seeds}'}"
               f"{' --quick' if is_quick else ''}{' --heavy' if heavy else ''}"
               f"{' --together' if together else ''}"
               f"{' --tabulate' if tabulate else ''}")
    note = (f"Generated by `{command}` ({time.time() - t0:.0f} s): figures from the runs "
            f"under {workroot}/<row>/ (also in {rep}.csv), notes from "
            "experiments/catalogue.py. How to read it, and what was tried beyond it: "
            f"[docs/report_{rep.lower()}.md](../../docs/report_{rep.lower()}.md). "
            f"Ours: mean ± std (seeds) and the mean's 95% CI; {VERDICT_RULE}.")
    table, kept = table_rows(entries, is_quick,
                             None if is_quick else previous_rows(out_dir, rep))
    if kept:
      note += (" Kept from the table this one replaced, as no run of theirs is under "
               f"{workroot} on the machine that wrote it: {', '.join(kept)}.")
    written[rep], _ = write_tables(rep, table, out_dir, note)
  return written


_REPORT = flags.DEFINE_string("report", "all", "A, B, C, D, E or all.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per row (0, 1, ... N-1); --quick: 1 "
                              "unless given.")
_ROWS = flags.DEFINE_string("rows", None, "Only these comma-separated row ids, e.g. B2,B6.")
_QUICK = flags.DEFINE_bool("quick", False, "A few steps of every row on tiny subsets (CI).")
_HEAVY = flags.DEFINE_bool("heavy", False, "Also run the rows beyond a 2-core CPU.")
_TABULATE = flags.DEFINE_bool("tabulate", False, "Run nothing: rewrite the tables from "
                              "the finished runs under the workroot.")
_TOGETHER = flags.DEFINE_bool("together", False, "Train each row's missing seeds as one "
                              "vmapped program (config.num_seeds): for accelerators.")
_WORKROOT = flags.DEFINE_string("workroot", None, "Default runs/reproduce[-quick].")
_OUT = flags.DEFINE_string("out", None, "Where tables go. Default experiments/results "
                           "(--quick: <workroot>/results).")


def main(argv):
  from digitjax.errors import UserError

  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # orbax and TFDS are chatty at INFO
  shared = default_data_dir()
  if shared:
    os.environ["TFDS_DATA_DIR"] = shared
  try:
    seeds = 1 if _QUICK.value and not flags.FLAGS["seeds"].present else _SEEDS.value
    written = reproduce(_REPORT.value, seeds, _ROWS.value, _QUICK.value,
                        _HEAVY.value, _WORKROOT.value, _OUT.value, _TABULATE.value,
                        _TOGETHER.value)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  for rep, path in written.items():
    print(f"Report {rep}: {path}")
  problem = written.problem()
  if problem:
    print(f"error: {problem}", file=sys.stderr)
    sys.exit(1)


def default_data_dir() -> str | None:
  """What launch.sh does: with TFDS_DATA_DIR unset, ../shared/tensorflow_datasets beside
  the checkout when it exists (else None: TFDS_DATA_DIR set, or no such folder)."""
  if os.environ.get("TFDS_DATA_DIR"):
    return None
  shared = os.path.join(os.path.dirname(catalogue.ROOT), "shared", "tensorflow_datasets")
  return os.path.abspath(shared) if os.path.isdir(shared) else None


if __name__ == "__main__":
  app.run(main)
