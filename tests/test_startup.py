"""A training run imports nothing it does not use: PyTorch (which tensorboardX imports
whenever it is installed) costs ~4 s of start-up."""
import subprocess
import sys

from conftest import ROOT

FAKE_TORCH = """
import os
open(os.environ["TORCH_IMPORTED"], "w").close()
"""


def test_tensorboard_events_are_written_without_importing_torch(tmp_path):
  """A stand-in torch package on the path records an import; writing a run's events
  (tensorboardX) must not trigger it, and torch stays importable afterwards."""
  (tmp_path / "site" / "torch").mkdir(parents=True)
  (tmp_path / "site" / "torch" / "__init__.py").write_text(FAKE_TORCH)
  marker = tmp_path / "torch_imported"
  code = f"""
import sys
sys.path.insert(0, {str(tmp_path / 'site')!r})
sys.path.insert(0, {str(ROOT)!r})
from digitjax import config, reporting
tb = reporting.TensorBoard({str(tmp_path / 'run')!r}, config.get_config())
tb.write(dict(epoch=1, loss=1.0, accuracy=0.5, val_loss=1.0, val_accuracy=0.5, lr=0.1))
tb.close()
assert "torch" not in sys.modules, "tensorboardX imported torch"
import torch  # the real one (here the stand-in) is still there for code that wants it
"""
  env = {"TORCH_IMPORTED": str(marker), "PATH": "/usr/bin:/bin"}
  done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
  assert done.returncode == 0, done.stderr[-2000:]
  assert marker.exists()  # only the explicit import at the end loaded it
  assert any((tmp_path / "run" / "tb").iterdir())
