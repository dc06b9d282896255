"""Re-run a report's rows for several seeds and tabulate them beside the published figures.

  python -m experiments.reproduce --report B            # B's rows, 3 seeds each
  python -m experiments.reproduce --report all --quick  # a few steps of every row (CI)
  python -m experiments.reproduce --report D --rows D1-30,D3 --seeds 5
  python -m experiments.reproduce --tabulate            # only rewrite the tables
  python -m experiments.reproduce --report D --rows D1 --heavy --together   # on a GPU

On an accelerator, --together trains a row's missing seeds side by side in one vmapped
program (runs/reproduce/<row>/seeds<a>-<b>); with $DIGITJAX_NPZ_DIR set it runs on a
machine without TensorFlow (docs/gpu.md).

Each run goes through digitjax.main.run in its own workdir, runs/reproduce/<row>/seed<k>
(the config's seed set to k), so an interrupted reproduction resumes: finished runs are
read back from their results.json, unfinished ones resume from their checkpoint. The
layout, the "finished" rule and quick mode are experiments/reproduce/runner.py's, shared
with experiments.sweep.
Writes experiments/results/<report>.md, .csv and .png (tables.py: the table, and a figure
of each row's published figure against our mean, 95% CI and seeds; --quick: under
runs/reproduce-quick/, never over the real tables). A table always lists every row of its
report: rows not chosen by --rows are read back from their finished runs under the
workroot (any seeds there), so `--rows B2` and then `--rows B3` build up one table instead
of overwriting it. Every seed found is also recorded in experiments/results/seeds.csv
(ledger.py), and tables count those lines too, so a row's seeds add up across sessions
and machines that do not share runs/. A row with neither (older tables) keeps its figures
from the table being replaced, and the table's note names those rows.

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

import argparse
import contextlib
import json
import os
import sys
import time

from digitjax import data
from digitjax.errors import UserError
from experiments import whole
from experiments.reproduce import catalogue, ledger, runner, tables


def run_row(row: catalogue.Row, seeds: int, workroot: str, is_quick: bool,
            heavy: bool, read_only: bool = False, together: bool = False) -> dict:
  """Runs (or reads back) every seed of a row under <workroot>/<row>; its table entry.

  read_only: run nothing; take whichever seeds of this row finished earlier.
  together: train the seeds still missing as one program (see runner.run_seeds). On an
  accelerator that is several times the throughput of one seed after another; on 2 CPU
  cores it gains nothing.
  """
  config = catalogue.load_config(row.config)
  entry = dict(id=row.id, config=row.config, published=row.published, metric=row.metric,
               epochs=row.epochs, weights=row.weights, runs=[], status="", notes=tables.note_link(row))
  if is_quick:
    config = runner.quick(config)
  folder = os.path.join(workroot, row.id)
  if read_only:
    return _read_back(row, config, folder, entry)
  if row.heavy and not heavy and not is_quick:
    entry["status"] = "needs a GPU: skipped (--heavy runs it)" + _and_data(config)
    return entry
  if not is_quick and not data.is_prepared(config):
    entry["status"] = f"pending data ({config.dataset.name} not prepared)"
    return entry
  if is_quick and not data.is_prepared(config):
    entry["status"] = "mock data"
  try:
    with runner.quick_data(config) if is_quick else contextlib.nullcontext():
      runs = runner.run_seeds(config, folder, list(range(seeds)), together)
  except UserError as e:
    entry["status"] = f"error: {str(e).splitlines()[0][:160]}"
    return entry
  entry["runs"] = [_run_entry(row, run) for run in runs]
  return entry


def _run_entry(row, run: runner.SeedRun) -> dict:
  """One seed's figures: the one the report published, read the report's way, and the
  test accuracy of digitjax's best-val_loss checkpoint beside it."""
  result, seed = run.result, run.seed
  if row.metric == "val":  # the best val accuracy over the epochs
    with open(os.path.join(run.workdir, "metrics.jsonl")) as f:
      history = [json.loads(line) for line in f if line.strip()]
    figure = max(h["val_accuracy"] for h in history if h.get("seed", seed) == seed)
  elif row.weights == "last":  # Keras evaluated the weights fit() ended with
    figure = result.get("test_accuracy_last_epoch", result["test_accuracy"])
  else:  # EarlyStopping(restore_best_weights=True): digitjax's best checkpoint
    figure = result["test_accuracy"]
  return dict(seed=seed, accuracy=100 * figure, best_checkpoint=100 * result["test_accuracy"],
              wall_seconds=run.wall_seconds, epochs_run=result["epochs_run"],
              device=run.device, together=run.together, workdir=run.workdir,
              identity=run.identity, commit=run.provenance.get("commit") or "",
              date=(run.provenance.get("date") or _written_on(run.workdir))[:10])


def _written_on(workdir: str) -> str:
  """The UTC date results.json was written (runs from before results recorded theirs)."""
  import datetime

  path = os.path.join(workdir, "results.json")
  if not os.path.exists(path):
    return ""
  mtime = os.path.getmtime(path)
  return datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc).isoformat()


def _and_data(config) -> str:
  """What a heavy row needs besides the GPU: its dataset, where that is not prepared."""
  return "" if data.is_prepared(config) else f"; pending data ({config.dataset.name} not prepared)"


def finished_entries(row, config, folder) -> list[dict]:
  """Table entries of row's finished seeds under folder, in seed order; runs nothing."""
  found = runner.finished_seeds(config, folder, skip_others=True)
  return [_run_entry(row, found[s]) for s in sorted(found)]


def _read_back(row, config, folder, entry) -> dict:
  """The finished seeds of row under folder, without running anything."""
  entry["runs"] = finished_entries(row, config, folder)
  if not entry["runs"]:
    if row.heavy:
      entry["status"] = "needs a GPU: not run (--heavy runs it)" + _and_data(config)
    elif not data.is_prepared(config):
      entry["status"] = f"pending data ({config.dataset.name} not prepared)"
    else:
      entry["status"] = "not run yet"
  return entry



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
            f"under {workroot}/<row>/ and the seeds recorded in {ledger.NAME} (also in "
            f"{rep}.csv). {tables.notes_sentence(rep)} "
            f"Ours: mean ± std (seeds) and the mean's 95% CI; {tables.VERDICT_RULE}.")
    if not is_quick:
      _with_ledger(entries, out_dir)
    table, kept = tables.table_rows(entries, is_quick,
                             None if is_quick else tables.previous_rows(out_dir, rep))
    if kept:
      note += (" Kept from the table this one replaced, as no run of theirs is under "
               f"{workroot} on the machine that wrote it: {', '.join(kept)}.")
    written[rep], _ = tables.write_tables(rep, table, out_dir, note)
    tables.write_figure(rep, table, entries, out_dir)
  return written


def _with_ledger(entries: list[dict], out_dir: str) -> None:
  """Adds to each entry its seeds recorded in out_dir's ledger (experiments/reproduce/ledger.py:
  seeds run in other sessions or on other machines), and records there the seeds just
  found under the workroot."""
  recorded = ledger.read(out_dir)
  found = {e["id"]: e["runs"] for e in entries if e["runs"]}
  for e in entries:
    config = catalogue.load_config(e["config"])
    e["runs"] = ledger.merge(e["id"], config, e["runs"], recorded)
    e["superseded"] = ledger.superseded(e["id"], config, recorded)
    if e["superseded"] and not e["runs"]:
      e["status"] = (f"not run since its config changed ({e['superseded']} seed(s) of an "
                     f"earlier one in {ledger.NAME})")
  ledger.write(out_dir, recorded, found)


def _parser():
  p = argparse.ArgumentParser(prog="python -m experiments.reproduce",
                              description=__doc__.splitlines()[0])
  p.add_argument("--report", default="all", help="A, B, C, D, E or all")
  p.add_argument("--seeds", type=whole(1), default=None,
                 help="seeds per row (0, 1, ... N-1); default 3 (--quick: 1)")
  p.add_argument("--rows", help="only these comma-separated row ids, e.g. B2,B6")
  p.add_argument("--quick", action="store_true",
                 help="one epoch of a few steps of every row on tiny subsets (CI)")
  p.add_argument("--heavy", action="store_true", help="also run the rows beyond a 2-core CPU")
  p.add_argument("--tabulate", action="store_true",
                 help="run nothing: rewrite the tables from the finished runs")
  p.add_argument("--together", action="store_true",
                 help="train each row's missing seeds as one vmapped program: for accelerators")
  p.add_argument("--workroot", help="default runs/reproduce[-quick]")
  p.add_argument("--out", help="where tables go; default experiments/results "
                 "(--quick: <workroot>/results)")
  return p


def main(argv=None):
  from absl import logging
  from digitjax.errors import UserError

  a = _parser().parse_args(argv)
  logging.set_verbosity(logging.WARNING)  # orbax and TFDS are chatty at INFO
  shared = default_data_dir()
  if shared:
    os.environ["TFDS_DATA_DIR"] = shared
  seeds = a.seeds or (1 if a.quick else 3)
  try:
    written = reproduce(a.report, seeds, a.rows, a.quick, a.heavy, a.workroot, a.out,
                        a.tabulate, a.together)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  except KeyboardInterrupt:
    print("Interrupted: rerun the same command to resume (finished seeds are kept, the "
          "interrupted one resumes from its checkpoint).", file=sys.stderr)
    sys.exit(130)
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
  main()
