"""experiments/gpu_jobs/call*.txt: the device calls prepared for the rows this CPU cannot
afford. Every heavy row that has no recorded seed has its place in exactly one call."""
import pathlib
import re

from experiments.reproduce import catalogue, ledger

ROOT = pathlib.Path(__file__).resolve().parents[1]
CALLS = sorted((ROOT / "experiments" / "gpu_jobs").glob("call*.txt"))


def _rows_in(call: pathlib.Path) -> list[str]:
  rows = []
  for line in call.read_text().splitlines():
    if line.strip() and not line.startswith("#"):
      rows += [r for m in re.findall(r"--rows (\S+)", line) for r in m.split(",")]
      rows += re.findall(r"--workdir=runs/reproduce/([^/\s]+)/", line)
  return rows


def test_every_untrained_heavy_row_has_one_place_in_the_calls():
  seeded = {row for row, _ in ledger.read(str(ROOT / "experiments" / "results"))}
  untrained = {r.id for r in catalogue.rows("all") if r.heavy and r.id not in seeded}
  placed = [r for call in CALLS for r in set(_rows_in(call))]
  assert untrained and sorted(placed) == sorted(set(placed)), "a row in two calls"
  assert untrained <= set(placed), f"no call runs {sorted(untrained - set(placed))}"


def test_calls_name_only_catalogue_rows_and_are_numbered_in_order():
  known = {r.id for r in catalogue.rows("all")}
  assert [c.name for c in CALLS] == [f"call{k}.txt" for k in range(1, len(CALLS) + 1)]
  for k, call in enumerate(CALLS, 1):
    assert call.read_text().startswith(f"# Device call {k} of {len(CALLS)} ")
    assert set(_rows_in(call)) <= known, call.name
