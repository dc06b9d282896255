"""experiments.conv_probe: its rows time every form and piece; bad arguments are usage errors."""
import pytest

from experiments import conv_probe


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
