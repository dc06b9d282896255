"""Report E (flowers, 5 classes): rows E1-E6, every optimizer variant and ladder step.

  python -m digitjax.main --config=configs/report_e.py:e2_alexnet_sgd

Shared by every row (REPORTS.md): TFDS tf_flowers (3,670 images; the report's Kaggle
copy had 4,317), resized to 150x150 (224x224 for E4), 80/20 train/val split as TFDS
split strings (train "train[:80%]", val "train[80%:]"). The published figures are the
best validation accuracy, so the monitor is val_accuracy (the best checkpoint is the
best-val epoch) and the "test" split is that same validation split: the figure we
compare is best val, as published, not a held-out test accuracy.
EarlyStopping patience 10 (on val_accuracy), up to 150 epochs. Batch size not given:
Keras's default, 32. Optimizers at Keras (tf.keras 2.x) defaults: SGD 0.01, Adam /
Adadelta / Adagrad 1e-3.
"""
from digitjax import config as base

OPTIMIZERS = ("adam", "adadelta", "adagrad", "sgd")


def _report_e(name, model, image_size=150, optimizer="adam"):
  c = base.get_config()
  c.name = f"report_e/{name}"
  c.dataset.name = "tf_flowers"
  c.dataset.image_size = image_size
  c.dataset.train_split = "train[:80%]"
  c.dataset.validation_split = "train[80%:]"
  c.dataset.test_split = "train[80%:]"
  base.choose_model(c, model)  # with its own fields (digitjax.models.FIELDS)
  c.optimizer.name = optimizer
  c.monitor = "val_accuracy"
  c.early_stopping.enabled = True
  c.early_stopping.patience = 10
  c.batch_size = 32
  c.eval_batch_size = 100
  c.num_epochs = 150
  return c


def e1_flowers_base_v1():
  """E1 v1, "3 conv + 2 dense layers": published best val 66.55%. Read as the
  TensorFlow flowers tutorial's model, which the report follows: Rescaling(1/255) ->
  Conv 16/32/64 3x3 same, each + MP 2 -> Flatten -> D 128 -> D 5, Adam
  (2,678,565 params at 150x150)."""
  c = _report_e("e1_flowers_base_v1", "flowers_cnn")
  c.model.filters, c.model.kernel_sizes, c.model.hidden_units = (16, 32, 64), (3, 3, 3), (128,)
  return c


# E6, the v7 ladder (Adam lr 1e-3). Each step is the previous one plus the change the
# report names; what it does not spell out (filter counts, dropout rates, the added conv's
# size, the augmentation's ranges) is read as below and kept fixed along the ladder.
def _v7_step(step):
  c = _report_e(f"e6_v7_step{step}", "flowers_cnn")
  m = c.model
  # step 0, "v7 base" (E1's second figure, 70.34%): 3 conv + 2 dense on raw [0, 255]
  # pixels (no Rescaling layer: step 3 adds it): Conv 32/64/128 3x3 -> Flatten ->
  # Drop .2 -> D 512 -> Drop .2 -> D 5.
  m.filters, m.kernel_sizes, m.hidden_units = (32, 64, 128), (3, 3, 3), (512,)
  m.dropout, m.input_scale = 0.2, 255.0
  if step >= 1:  # + a conv with a larger kernel: a fourth conv, 64 filters 5x5
    m.filters, m.kernel_sizes = (32, 64, 128, 64), (3, 3, 3, 5)
  if step >= 2:  # + GlobalAveragePooling2D in place of Flatten, dropout .2 -> .5
    m.head, m.dropout = "gap", 0.5
  if step >= 3:  # Rescaling(1/255); the last conv 128 filters 5x5
    m.input_scale, m.filters = 1.0, (32, 64, 128, 128)
  if step >= 4:  # BN after every conv, first pooling 3x3 stride 2 (GAP kept)
    m.batch_norm, m.first_pool = True, (3, 2)
  if step >= 5:  # + data augmentation: the TF tutorial's RandomFlip("horizontal"),
    # RandomRotation(0.1) (= +-36 degrees) and RandomZoom(0.1)
    c.augment.horizontal_flip = True
    c.augment.rotation_range = 36.0
    c.augment.zoom_range = 0.1
  return c


def e6_v7_step0():
  """E6 step 0, v7 base (E1's 70.34%)."""
  return _v7_step(0)


def e6_v7_step1():
  """E6 step 1, + conv with a larger kernel: published 72.77%."""
  return _v7_step(1)


def e6_v7_step2():
  """E6 step 2, + GlobalAveragePooling and more dropout: published 77.97%."""
  return _v7_step(2)


def e6_v7_step3():
  """E6 step 3, rescale 1/255, last conv 128 filters 5x5: published 78.79%."""
  return _v7_step(3)


def e6_v7_step4():
  """E6 step 4, BN after every conv, first pool 3x3 stride 2, GAP: published 80.42%."""
  return _v7_step(4)


def e6_v7_step5():
  """E6 step 5, + data augmentation: published 82.25%."""
  return _v7_step(5)


def _net(row, model, image_size=150):
  """E2-E5: one variant per optimizer, e.g. e2_alexnet_sgd."""
  def make(optimizer):
    return _report_e(f"{row}_{model}_{optimizer}", model, image_size, optimizer)
  return {f"{row}_{model}_{o}": (lambda o=o: make(o)) for o in OPTIMIZERS}


# E2 AlexNet (layout: digitjax.models.imagenet.alexnet): Adam 73.93, Adadelta 65.01,
#   Adagrad 72.77, SGD 74.62.
# E3 VGG16 by hand at 150x150 (imagenet.vgg16): Adam / Adadelta / SGD never learned
#   (~27%), Adagrad 61.61.
# E4 keras.applications VGG16, weights=None, 224x224 (imagenet.vgg16_app): Adadelta 61.76,
#   Adagrad 65.93, SGD 63.73, Adam never learned.
# E5 GoogLeNet with its two auxiliary heads (imagenet.GoogLeNet; aux loss weight 0.3):
#   Adadelta ~70, SGD ~80 (only those two were published; Adam/Adagrad also defined).
VARIANTS = {
    "e1_flowers_base_v1": e1_flowers_base_v1,
    **{f.__name__: f for f in (e6_v7_step0, e6_v7_step1, e6_v7_step2, e6_v7_step3,
                               e6_v7_step4, e6_v7_step5)},
    **_net("e2", "alexnet"),
    **_net("e3", "vgg16"),
    **_net("e4", "vgg16_app", image_size=224),
    **_net("e5", "googlenet"),
}


def get_config(variant: str = "e6_v7_step5"):
  return base.variant(VARIANTS, variant, "configs/report_e.py")
