"""B6 cnn_bn, the flagship of ../shared/REPORTS.md: published test accuracy 99.51%.

  python -m digitjax.main --config=configs/cnn_bn.py

Expect 99.43 +- 0.04% test accuracy after the last epoch (3 seeds; 99.44% from the
best-val_loss checkpoint; docs/report_b.md). An epoch takes 30-34 s on an idle 2-core
CPU (experiments/BENCH.md), so a run about 16-17 min; on a busy machine up to twice
that. configs/cnn_bn_plus.py clears 99.5%.

Faithful to report B: four Conv(relu, he_normal, kernel L2) -> BatchNorm blocks with
max-pooling and dropout rising 0.20 -> 0.30 -> 0.35 -> 0.40 to a 5x5x64 map, then
D 128 -> D 10 (234,026 trainable parameters, as published; layout in
digitjax.models.cnn_bn). RMSprop (Keras defaults, lr 1e-3), batch 64, 30 epochs,
ReduceLROnPlateau(val_loss, patience 3, factor 0.5, min_lr 1e-4), 54k/6k/10k split,
gaussian noise on the training images. RMSprop as standalone Keras 2.2 had it in 2019,
epsilon outside the square root (tf.keras 2 and Keras 3 put it inside).

Read where the report is silent: the L2 factor (1e-4) and the noise level (std 0.1 on
[0, 1] pixels) are not given; both are the usual Keras-tutorial values. Keras trains on
the last partial batch of an epoch; digitjax drops it (48 of 54,000 images, a different
48 each epoch) to keep one compiled step shape.
"""
from digitjax import config as base


def get_config():
  c = base.get_config()
  c.name = "cnn_bn"
  c.model.name = "cnn_bn"
  c.model.l2 = 1e-4
  c.optimizer.name = "rmsprop"
  c.optimizer.eps_in_sqrt = False
  c.batch_size = 64
  c.num_epochs = 30
  c.reduce_on_plateau.enabled = True
  c.reduce_on_plateau.factor = 0.5
  c.reduce_on_plateau.patience = 3
  c.reduce_on_plateau.min_lr = 1e-4
  c.augment.noise_std = 0.1
  return c
