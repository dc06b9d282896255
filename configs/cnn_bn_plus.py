"""cnn_bn_plus: the flagship (B6) with augmentation and today's Keras RMSprop.

  python -m digitjax.main --config=configs/cnn_bn_plus.py

Expect 99.55 +- 0.03% test accuracy from the best-val_loss checkpoint (3 seeds; 99.51%
after the last epoch) in 16-17 min on a 2-core CPU (30 s per epoch).

Not a report row: an improvement on configs/cnn_bn.py, kept apart so the faithful config
stays faithful. Same model (234,026 parameters), batch 64, 30 epochs, plateau schedule,
54k/6k/10k split and noise std 0.1 as B6, plus two changes:
- random rotations up to 10 degrees, zoom 0.9-1.1 and shifts up to 10% of the width and
  height, drawn inside the jitted step: the usual MNIST values (B2a's "small rotations
  and zoom", plus shifts). B6 ends with train accuracy near 99.5% and val_loss flat from
  about epoch 15; distorting the digits is the cheapest regulariser that keeps the model
  and the 30 epochs.
- RMSprop as tf.keras 2 and Keras 3 have it, epsilon inside the square root
  (`optimizer.eps_in_sqrt=True`, optax's default), instead of the standalone Keras 2.2
  rule the faithful B6 needs. Chosen on validation loss: with the augmentation, 3 seeds
  ended at best val_loss 0.0181-0.0195 under this rule against 0.0187-0.0213 under
  Keras 2.2's (the same seeds).
docs/report_b.md has the measured runs (3 seeds: 99.55% from the best checkpoint,
99.51% after the last epoch) and the Keras 2.2 rule's figures.
"""
from digitjax import config_files


def get_config():
  c = config_files.from_file("cnn_bn.py", beside=__file__)
  c.name = "cnn_bn_plus"
  c.optimizer.eps_in_sqrt = True
  c.augment.rotation_range = 10.0
  c.augment.zoom_range = 0.1
  c.augment.width_shift_range = 0.1
  c.augment.height_shift_range = 0.1
  return c
