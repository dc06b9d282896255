"""experiments.perf.conv_probe: its rows time every form and piece; bad arguments are usage errors."""
import jax
import numpy as np
import pytest

from digitjax.models import layers
from experiments.perf import conv_probe


def test_probe_times_every_form_and_skips_a_first_layers_input_gradient():
  rows = conv_probe.probe("small", 8, 16, 3, 3, 8, iters=2)
  assert [r.split(" | ")[1] for r in rows] == ["forward", "input grad", "kernel grad"]
  for row in rows:
    cells = row.strip("| ").split(" | ")[2:]
    assert len(cells) == len(conv_probe.FORMS) and all(float(c) > 0 for c in cells)
  first = conv_probe.probe("first", 2, 8, 1, 3, 4, iters=1)
  assert [r.split(" | ")[1] for r in first] == ["forward", "kernel grad"]


@pytest.mark.parametrize("args", [["--shapes", "vgg"], ["--iters", "0"]])
def test_bad_arguments_are_usage_errors(args, capsys):
  with pytest.raises(SystemExit) as e:
    conv_probe.main(args)
  assert e.value.code == 2 and "error:" in capsys.readouterr().err


@pytest.mark.parametrize("size", [(9, 12), (8, 7)])  # odd and even outputs: cropped tiles
def test_winograd_candidate_equals_lax_conv(size):
  kx, kw = jax.random.split(jax.random.key(1))
  x = jax.random.normal(kx, (3, *size, 5))
  w = jax.random.normal(kw, (3, 3, 5, 7))
  want = layers.conv_xla(x, w)
  got = conv_probe.winograd_conv3x3(x, w)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_winograd_rows_time_the_3x3_convs(monkeypatch):
  monkeypatch.setattr(conv_probe, "SHAPES", {"tiny": [("3x3 2->4", 2, 8, 2, 3, 4),
                                                      ("5x5 1->4", 2, 8, 1, 5, 4)]})
  rows = conv_probe.winograd_rows(iters=1)
  assert len(rows) == 1 and all(float(c) > 0 for c in rows[0].strip("| ").split(" | ")[2:])


def test_model_convs_lists_every_conv_of_a_report_model_by_shape():
  batch, image, seen = conv_probe.model_convs("configs/report_e.py:e2_alexnet_sgd")
  assert (batch, image) == (32, (150, 150, 3)) and sum(seen.values()) == 5
  assert seen[((150, 150, 3), (11, 11, 3, 96), (4, 4), "VALID")] == 1  # the strided stem
  _, _, googlenet = conv_probe.model_convs("configs/report_e.py:e5_googlenet_sgd")
  assert sum(googlenet.values()) == 59  # stem 3 + 9 inception modules x 6 + 2 aux heads
  assert layers.CONVS["matmul"] is layers.conv_matmul  # the recording is undone


def test_model_rows_time_each_shape_and_leave_out_what_training_never_computes(monkeypatch):
  import collections
  seen = collections.Counter({((8, 8, 1), (3, 3, 1, 4), (1, 1), "VALID"): 1,
                              ((6, 6, 4), (3, 3, 4, 4), (2, 2), "SAME"): 2})
  monkeypatch.setattr(conv_probe, "model_convs", lambda spec: (2, (8, 8, 1), seen))
  monkeypatch.setattr(conv_probe, "FORMS", {f: layers.CONVS[f] for f in ("matmul", "xla")})
  first, second, total = conv_probe.model_rows("any", iters=1)
  cells = lambda row: row.strip("| ").split(" | ")
  assert cells(first)[:3] == ["8x8x1", "3x3/1 VALID -> 4", "1"]
  forms = dict(zip(conv_probe.FORMS, cells(first)[3:]))
  assert forms["matmul"].split("/")[1] == "-"  # the input's gradient: never computed
  assert forms["xla"].split("/")[2] == "-"  # lax.conv's kernel gradient: --all-pieces
  assert all(float(v) > 0 for v in cells(second)[3].split("/"))
  assert cells(total)[0] == "total (ms a step)"
