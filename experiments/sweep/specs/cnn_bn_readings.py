"""Report B (B6): the flagship's two silent readings, the kernel L2 factor and the noise.

  ./launch.sh sweep experiments/sweep/specs/cnn_bn_readings.py

The report names "kernel L2" and "random noise added to training images" without values;
configs/cnn_bn.py reads 1e-4 and std 0.1. Its faithful run lands 0.15 pts under the
published 99.51% (experiments/results/B.md), so this grid asks whether another reading
closes that: model.l2 {0, 1e-4, 1e-3} x augment.noise_std {0, 0.1, 0.2}, read as B6 is
read (the last epoch's test accuracy). 9 points x 3 seeds x ~27 min on a 2-core CPU:
about 12 h there, minutes on a GPU. A reading that wins is evidence, not a new faithful
config: the report's run is one seed of one of these.
"""
from experiments.reproduce import catalogue


def get_sweep():
  base = catalogue.load_config("configs/cnn_bn.py")
  return dict(name="report_b_cnn_bn_readings", base=base, seeds=3,
              metric="test_accuracy_last_epoch",
              axes={"model.l2": [0.0, 1e-4, 1e-3], "augment.noise_std": [0.0, 0.1, 0.2]})
