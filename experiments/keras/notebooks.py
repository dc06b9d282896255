"""The authors' own Keras runs of report E, epoch by epoch, beside ours.

  python -m experiments.keras.notebooks E5-sgd                  # their curve beside our seeds'
  python -m experiments.keras.notebooks E5-sgd --epochs 1,20,40,100,150,200
  python -m experiments.keras.notebooks --extract FOLDER        # transcribe the notebooks again

Why: a published figure is one point of a curve. The authors' notebooks logged every
epoch (Keras's fit output), so a row's note can set the whole shape beside ours: how fast
each learns, when each overfits or levels off, where the best epoch falls. The logs were
transcribed once into experiments/results/notebooks/<row>.csv (epoch, accuracy,
val_accuracy, loss, val_loss: Keras's running train figures and the epoch's val
figures; for GoogLeNet, the main output's). Our side is each seed's metrics.jsonl under
runs/reproduce/<row>/seed<k>.

The notebooks are on the public repository the report links, one branch per version
(SOURCES). To transcribe them again, put them in one folder under their own names:

  git clone https://github.com/Isac-AS/FSI-PL-RedesNeuronales-Flores authors
  mkdir notebooks && cd authors
  for b in $(git branch -r | grep Version_); do git ls-tree --name-only "$b" | grep ipynb |
    while read -r f; do git show "$b:$f" > "../notebooks/$f"; done; done
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FOLDER = os.path.join(ROOT, "experiments", "results", "notebooks")
FIELDS = ("epoch", "accuracy", "val_accuracy", "loss", "val_loss")
_V7 = "Version_7_Modificacion_de_hiperparámetros_a_partir_de_la_base"
_OPT = dict(adam="Adam", adadelta="Adadelta", adagrad="Adagrad", sgd="SGD")
SOURCES = {  # row -> (branch, notebook, the main output's Keras name: "" when one output)
    **{f"E2-{o}": ("Version_3_AlexNet", f"AlexNet_{n}_Kaggle.ipynb", "")
       for o, n in _OPT.items()},
    # E3-sgd has none: modelo-vgg16-sgd-kaggle.ipynb is a byte-for-byte copy of the
    # Adadelta notebook (it compiles Adadelta()).
    **{f"E3-{o}": ("Version_4_VGG16", f"modelo-vgg16-{o}-kaggle.ipynb", "")
       for o in ("adadelta", "adagrad")},
    "E3-adam": ("Version_4_VGG16", "new_vgg16-adam-kaggle.ipynb", ""),
    **{f"E4-{o}": ("Version_5_VGG16_importado", f"VGG16 Importado {n}.ipynb", "")
       for o, n in _OPT.items() if o != "adam"},
    "E4-adam": ("Version_5_VGG16_importado", "VGG16-Imp-Adam.ipynb", ""),
    "E5-sgd": ("Version_6_GoogleNet", "GoogleNet SGD.ipynb", "dense_39"),
    "E5-adadelta": ("Version_6_GoogleNet", "GoogleNet Adadelta.ipynb", "dense_29"),
    "E6.0": (_V7, "Version_7_Ejecucion_base.ipynb", ""),
    "E6.1": (_V7, "V7_Mejora_1_CapaConv_Con_Kernel_Mas_Grande.ipynb", ""),
    "E6.2": (_V7, "V7_Mejora_2_GAP.ipynb", ""),
    "E6.3": (_V7, "V7_Mejora_3_compiler_and_layers_adjustment.ipynb", ""),
    "E6.4": (_V7, "V7_Mejora_4.ipynb", ""),
    "E6.5": (_V7, "V7_Mejora_5_DataAug2.ipynb", ""),  # the run the report quotes (note 5)
}
_EPOCH = re.compile(r"Epoch (\d+)/\d+\n")
_VALUE = re.compile(r"(\w+): ([-+0-9.eE]+|nan)")


def _output_text(notebook: dict) -> str:
  """Every cell's printed output, in order (stream text; Keras logs fit there)."""
  parts = []
  for cell in notebook.get("cells", []):
    for out in cell.get("outputs", []):
      text = out.get("text", "")
      parts.append(text if isinstance(text, str) else "".join(text))
  return "\n".join(parts)


def parse_log(text: str, output: str = "") -> list[dict]:
  """Keras fit logs -> one record per epoch (FIELDS), from each epoch's last progress
  line; with `output`, the figures of that output of a multi-output model."""
  records = []
  marks = list(_EPOCH.finditer(text))
  for k, mark in enumerate(marks):
    end = marks[k + 1].start() if k + 1 < len(marks) else len(text)
    lines = [l for l in re.split(r"[\r\n]", text[mark.end():end]) if " - loss: " in l]
    if not lines:
      continue
    last = lines[-1]
    values = dict(_VALUE.findall(last[last.index(" - loss: ") + 3:]))
    try:
      record = {f: float(values[_key(f, output)]) for f in FIELDS[1:]}
    except KeyError as e:
      raise ValueError(f"epoch {mark.group(1)}'s log has no {e.args[0]}") from None
    records.append(dict(epoch=int(mark.group(1)), **record))
  return records


def _key(field: str, output: str) -> str:
  """Keras's name for a field: val_accuracy, or val_dense_39_accuracy for an output."""
  if not output:
    return field
  return f"val_{output}_{field[4:]}" if field.startswith("val_") else f"{output}_{field}"


def extract(source: str, folder: str = FOLDER) -> list[str]:
  """Transcribes every SOURCES notebook found in `source` into folder/<row>.csv; returns
  the rows written. A notebook that is missing or holds no log is an error naming it."""
  missing = [n for _, n, _ in SOURCES.values() if not os.path.isfile(os.path.join(source, n))]
  if missing:
    raise ValueError(f"{source} lacks {len(missing)} notebook(s): {', '.join(missing)} "
                     "(the module's docstring says how to fetch them)")
  curves = {row: _read_notebook(os.path.join(source, name), output)
            for row, (_, name, output) in SOURCES.items()}
  os.makedirs(folder, exist_ok=True)
  for row, records in curves.items():
    with open(os.path.join(folder, f"{row}.csv"), "w", newline="") as f:
      writer = csv.DictWriter(f, FIELDS, lineterminator="\n")
      writer.writeheader()
      writer.writerows(records)
  return list(SOURCES)


def _read_notebook(path: str, output: str) -> list[dict]:
  """One training run's records; a notebook without one, or with two, is refused."""
  name = os.path.basename(path)
  try:
    with open(path, encoding="utf-8") as f:
      records = parse_log(_output_text(json.load(f)), output)
  except ValueError as e:
    raise ValueError(f"{name}: {e}") from None
  epochs = [r["epoch"] for r in records]
  if not records:
    raise ValueError(f"{name} holds no Keras training log")
  if epochs != list(range(1, len(records) + 1)):
    raise ValueError(f"{name} holds more than one training run, or a gap (its epochs: "
                     f"{', '.join(map(str, epochs[:8]))}, ...); transcribe one by hand")
  return records


def read_curve(row: str, folder: str = FOLDER) -> list[dict]:
  """The notebook's records of a row (FIELDS; epoch an int)."""
  if row not in SOURCES:
    raise ValueError(f"no notebook for row {row!r}; rows with one: {', '.join(SOURCES)}")
  path = os.path.join(folder, f"{row}.csv")
  if not os.path.isfile(path):
    raise ValueError(f"{path} is missing: transcribe the notebooks with --extract FOLDER")
  with open(path, newline="") as f:
    return [dict(epoch=int(r["epoch"]), **{k: float(r[k]) for k in FIELDS[1:]})
            for r in csv.DictReader(f)]


def our_curves(row: str, workroot: str) -> dict[str, list[dict]]:
  """{seed<k>: the epochs metrics.jsonl records with a val figure} for the row's runs."""
  curves = {}
  paths = glob.glob(os.path.join(workroot, row, "seed*", "metrics.jsonl"))
  for path in sorted(paths, key=lambda p: (len(p), p)):  # seed2 before seed10
    try:
      with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
      raise ValueError(f"{path} cannot be read ({e})") from None
    kept = [r for r in records if r.get("val_accuracy") is not None]
    if kept:
      curves[os.path.basename(os.path.dirname(path))] = kept
  return curves


def _default_epochs(last: int) -> list[int]:
  marks = [1, 2, 5, 10, 15, 20, 30, 40, 50, 75, 100, 125, 150, 175, 200]
  return [e for e in marks if e < last] + [last]


def table(row: str, epochs=None, workroot: str = os.path.join("runs", "reproduce"),
          folder: str = FOLDER) -> str:
  """A markdown table: the notebook's train and val accuracy (%) and each of our seeds'
  at the given epochs, then each side's best val epoch."""
  sides = {"notebook": read_curve(row, folder), **our_curves(row, workroot)}
  by_epoch = {name: {r["epoch"]: r for r in recs} for name, recs in sides.items()}
  epochs = epochs or _default_epochs(max(max(e) for e in by_epoch.values()))
  pct = lambda r, k: f"{100 * r[k]:.1f}" if r else ""
  head = ["epoch"] + [f"{name} {k}" for name in sides for k in ("train", "val")]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for e in epochs:
    cells = [pct(by_epoch[n].get(e), k) for n in sides for k in ("accuracy", "val_accuracy")]
    lines.append(f"| {e} | " + " | ".join(cells) + " |")
  best = []
  for recs in sides.values():
    b = max(recs, key=lambda r: r["val_accuracy"])
    best += ["", f"{100 * b['val_accuracy']:.2f} (epoch {b['epoch']} of {len(recs)})"]
  lines.append("| best val | " + " | ".join(best) + " |")
  if len(sides) == 1:
    lines.append(f"\nNo run of {row} under {workroot} has a val figure yet.")
  else:
    lines.append("\n" + _gaps(by_epoch))
  return "\n".join(lines)


def _gaps(by_epoch: dict) -> str:
  """Ours minus the notebook, averaged over every seed's epochs that both logged: train
  accuracy from epoch 1, val from epoch 10 (the first epochs' val swings most)."""
  theirs = by_epoch["notebook"]
  diffs = {"accuracy": [], "val_accuracy": []}
  for name, ours in by_epoch.items():
    if name == "notebook":
      continue
    for e in set(ours) & set(theirs):
      for k, first in (("accuracy", 1), ("val_accuracy", 10)):
        if e >= first:
          diffs[k].append(100 * (ours[e][k] - theirs[e][k]))
  mean = lambda d: f"{sum(d) / len(d):+.2f} points over {len(d)} epochs" if d else "no epoch"
  return (f"Ours minus the notebook: train accuracy {mean(diffs['accuracy'])}; val "
          f"accuracy from epoch 10 {mean(diffs['val_accuracy'])}.")


def _epochs(text: str) -> list[int]:
  try:
    epochs = [int(e) for e in text.split(",")]
  except ValueError:
    epochs = []
  if not epochs or min(epochs) < 1:
    raise ValueError(f"--epochs={text}: give epochs from 1 up, comma-separated (1,20,40)")
  return epochs


def main(argv=None):
  p = argparse.ArgumentParser(prog="python -m experiments.keras.notebooks",
                              description="The authors' Keras run of a report E row, epoch "
                                          "by epoch, beside our seeds'.")
  p.add_argument("row", nargs="?", help=f"one of {', '.join(SOURCES)}")
  p.add_argument("--epochs", help="comma-separated epochs to show (default: a spread)")
  p.add_argument("--workroot", default=os.path.join("runs", "reproduce"),
                 help="where the row's runs are (default runs/reproduce)")
  p.add_argument("--extract", metavar="FOLDER",
                 help="transcribe the notebooks in FOLDER into experiments/results/notebooks")
  a = p.parse_args(argv)
  try:
    if a.extract:
      print(f"wrote {len(extract(a.extract))} curves to {os.path.relpath(FOLDER)}")
    elif not a.row:
      raise ValueError("name a row (e.g. E5-sgd) or --extract FOLDER")
    else:
      epochs = _epochs(a.epochs) if a.epochs else None
      print(table(a.row, epochs, a.workroot))
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  main()
