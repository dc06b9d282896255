"""Every row of docs/catalogue.md, machine-readable, for experiments.reproduce.

A row names its config as `file:variant` (what `--config=` takes), the published figure
(percent; None where the report publishes none), whether that figure is test or val
accuracy, and the epoch budget. `heavy` rows are beyond a 2-core CPU (700 epochs, or
ImageNet-sized networks at 150-224 px); the runner skips them unless asked.

Data only: what a row's published figure is and why ours differs (the lab notes, dated,
written after the runs) live in docs/report_<x>.md, "Row notes", where the tables link.
"""
from __future__ import annotations

import dataclasses
import os

from digitjax import config_files

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass(frozen=True)
class Row:
  id: str
  config: str  # "configs/report_b.py:b2_keras_cnn"
  published: float | None  # percent
  metric: str  # "test" | "val"
  epochs: int
  heavy: bool = False
  # Which weights the report evaluated: "last" (Keras's fit() leaves the last epoch's)
  # or "best" (EarlyStopping(restore_best_weights=True)). Val rows publish the best val
  # accuracy over the epochs instead.
  weights: str = "last"

  @property
  def report(self) -> str:
    return self.id[0]


def _r(id, variant, published, epochs, metric="test", heavy=False, weights="last"):
  file = "cnn_bn.py" if variant == "cnn_bn" else f"report_{id[0].lower()}.py"
  spec = f"configs/{file}" + ("" if variant == "cnn_bn" else f":{variant}")
  return Row(id, spec, published, metric, epochs, heavy, weights)


_E = dict(metric="val")
_BIG = dict(metric="val", heavy=True)
ROWS = (
    _r("A1", "a1_perceptron", 92.78, 20),
    _r("A2", "a2_mlp1", None, 20), _r("A3", "a3_mlp2", None, 20),
    _r("A4", "a4_mlp_dropout", None, 20), _r("A5", "a5_l2", None, 20),
    _r("B1", "b1_keras_mlp", 98.199, 20),
    _r("B2", "b2_keras_cnn", 98.849, 5),
    _r("B2a", "b2a_keras_cnn_aug", 99.269, 20),
    _r("B3", "b3_cnn_single", 98.42, 20),
    _r("B4", "b4_cnn3_v1", 98.89, 20),
    _r("B5", "b5_cnn3_v2", 98.549, 20),
    _r("B6", "cnn_bn", 99.51, 30),
    _r("B6a", "b6a_cnn_bn_es", 99.53, 100, weights="best"),
    _r("B6b", "b6b_cnn_bn_es", 99.059, 100, weights="best"),
    _r("B6c", "b6c_cnn_bn_es", 99.32, 100, weights="best"),
    _r("C1", "c1_v1", 97.62, 15), _r("C2", "c2_v2", 98.22, 15), _r("C3", "c3_v3", 99.15, 20),
    _r("D1", "d1_net1", 98.29, 700, heavy=True),
    _r("D1-30", "d1_net1_30ep", 91.78, 30),
    _r("D2", "d2_net2", 97.94, 700, heavy=True),
    _r("D2-30", "d2_net2_30ep", 91.17, 30),
    _r("D3", "d3_cifar_net1_adam", 64.69, 30),
    _r("D4", "d4_cifar_net1_adadelta", 33.94, 30),
    _r("E1", "e1_flowers_base_v1", 66.55, 150, **_E),
    # AlexNet costs ~1 h a seed on 2 CPU cores (E2-sgd: 50 epochs at 50-80 s), as the E6
    # ladder does: not heavy. VGG16 (E3, E4) and GoogLeNet at 224 px (E5) are.
    _r("E2-adam", "e2_alexnet_adam", 73.93, 150, **_E),
    _r("E2-adadelta", "e2_alexnet_adadelta", 65.01, 150, **_E),
    _r("E2-adagrad", "e2_alexnet_adagrad", 72.77, 150, **_E),
    _r("E2-sgd", "e2_alexnet_sgd", 74.62, 150, **_E),
    _r("E3-adam", "e3_vgg16_adam", 27.0, 200, **_BIG),
    _r("E3-adadelta", "e3_vgg16_adadelta", 27.0, 200, **_BIG),
    _r("E3-adagrad", "e3_vgg16_adagrad", 61.61, 200, **_BIG),
    _r("E3-sgd", "e3_vgg16_sgd", 27.0, 200, **_BIG),
    _r("E4-adam", "e4_vgg16_app_adam", None, 200, **_BIG),
    _r("E4-adadelta", "e4_vgg16_app_adadelta", 61.76, 200, **_BIG),
    _r("E4-adagrad", "e4_vgg16_app_adagrad", 65.93, 200, **_BIG),
    _r("E4-sgd", "e4_vgg16_app_sgd", 63.73, 200, **_BIG),
    _r("E5-adadelta", "e5_googlenet_adadelta", 70.0, 200, **_BIG),
    _r("E5-sgd", "e5_googlenet_sgd", 80.0, 200, **_BIG),
    _r("E6.0", "e6_v7_step0", 70.34, 150, **_E),
    _r("E6.1", "e6_v7_step1", 72.77, 150, **_E),
    _r("E6.2", "e6_v7_step2", 77.97, 150, **_E),
    _r("E6.3", "e6_v7_step3", 78.79, 150, **_E),
    _r("E6.4", "e6_v7_step4", 80.42, 150, **_E),
    _r("E6.5", "e6_v7_step5", 82.25, 150, **_E),
)
REPORTS = "ABCDE"


def rows(report: str = "all", ids: str | None = None) -> list[Row]:
  """The rows of a report (A..E or all), optionally only the comma-separated ids."""
  from digitjax.errors import UserError

  report = report.upper()
  if report != "ALL" and report not in REPORTS:
    raise UserError(f"unknown report {report!r}; choose one of {', '.join(REPORTS)} or all.")
  chosen = [r for r in ROWS if report == "ALL" or r.report == report]
  if ids is not None:
    wanted = [i.strip() for i in ids.split(",") if i.strip()]
    if not wanted:
      raise UserError(f"--rows {ids!r} names no row; give ids such as "
                      f"{', '.join(r.id for r in chosen[:3])}, or leave --rows out for all.")
    known = {r.id for r in chosen}
    unknown = [i for i in wanted if i not in known]
    if unknown:
      raise UserError(f"no row {', '.join(unknown)} in report {report}; it has "
                      f"{', '.join(r.id for r in chosen)}.")
    chosen = [r for r in chosen if r.id in wanted]
  return chosen


def load_config(spec: str):
  """The ConfigDict of `path.py[:variant]`, as `--config=path.py:variant` would give."""
  path, _, arg = spec.partition(":")
  return config_files.from_file(os.path.join(ROOT, path), arg or None)
