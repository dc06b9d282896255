"""Every row of docs/catalogue.md, machine-readable, for experiments.reproduce.

A row names its config as `file:variant` (what `--config=` takes), the published figure
(percent; None where the report publishes none), whether that figure is test or val
accuracy, and the epoch budget. `heavy` rows are beyond a 2-core CPU (700 epochs, or
ImageNet-sized networks at 150-224 px); the runner skips them unless asked.
"""
from __future__ import annotations

import dataclasses
import os

from digitjax import config as digitjax_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout


@dataclasses.dataclass(frozen=True)
class Row:
  id: str
  config: str  # "configs/report_b.py:b2_keras_cnn"
  published: float | None  # percent
  metric: str  # "test" | "val"
  epochs: int
  heavy: bool = False
  note: str = ""  # about the published figure (e.g. when early stopping ended it)
  # Which weights the report evaluated: "last" (Keras's fit() leaves the last epoch's)
  # or "best" (EarlyStopping(restore_best_weights=True)). Val rows publish the best val
  # accuracy over the epochs instead.
  weights: str = "last"

  @property
  def notes(self) -> str:
    return "; ".join(t for t in (self.note, WHY.get(self.id, "")) if t)

  @property
  def report(self) -> str:
    return self.id[0]


def _r(id, variant, published, epochs, metric="test", heavy=False, note="", weights="last"):
  file = "cnn_bn.py" if variant == "cnn_bn" else f"report_{id[0].lower()}.py"
  spec = f"configs/{file}" + ("" if variant == "cnn_bn" else f":{variant}")
  return Row(id, spec, published, metric, epochs, heavy, note, weights)


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
    _r("B6a", "b6a_cnn_bn_es", 99.53, 100, note="stopped after 69 epochs", weights="best"),
    _r("B6b", "b6b_cnn_bn_es", 99.059, 100, note="stopped after 15 epochs", weights="best"),
    _r("B6c", "b6c_cnn_bn_es", 99.32, 100, note="about 27 epochs", weights="best"),
    _r("C1", "c1_v1", 97.62, 15), _r("C2", "c2_v2", 98.22, 15), _r("C3", "c3_v3", 99.15, 20),
    _r("D1", "d1_net1", 98.29, 700, heavy=True),
    _r("D1-30", "d1_net1_30ep", 91.78, 30),
    _r("D2", "d2_net2", 97.94, 700, heavy=True),
    _r("D2-30", "d2_net2_30ep", 91.17, 30),
    _r("D3", "d3_cifar_net1_adam", 64.69, 30),
    _r("D4", "d4_cifar_net1_adadelta", 33.94, 30),
    _r("E1", "e1_flowers_base_v1", 66.55, 150, **_E),
    _r("E2-adam", "e2_alexnet_adam", 73.93, 150, **_BIG),
    _r("E2-adadelta", "e2_alexnet_adadelta", 65.01, 150, **_BIG),
    _r("E2-adagrad", "e2_alexnet_adagrad", 72.77, 150, **_BIG),
    _r("E2-sgd", "e2_alexnet_sgd", 74.62, 150, **_BIG),
    _r("E3-adam", "e3_vgg16_adam", 27.0, 200, note="never learned (~27%)", **_BIG),
    _r("E3-adadelta", "e3_vgg16_adadelta", 27.0, 200, note="never learned (~27%)", **_BIG),
    _r("E3-adagrad", "e3_vgg16_adagrad", 61.61, 200, **_BIG),
    _r("E3-sgd", "e3_vgg16_sgd", 27.0, 200, note="never learned (~27%)", **_BIG),
    _r("E4-adam", "e4_vgg16_app_adam", None, 150, note="never learned (no figure)", **_BIG),
    _r("E4-adadelta", "e4_vgg16_app_adadelta", 61.76, 150, **_BIG),
    _r("E4-adagrad", "e4_vgg16_app_adagrad", 65.93, 150, **_BIG),
    _r("E4-sgd", "e4_vgg16_app_sgd", 63.73, 150, **_BIG),
    _r("E5-adadelta", "e5_googlenet_adadelta", 70.0, 150, note="published as ~70", **_BIG),
    _r("E5-sgd", "e5_googlenet_sgd", 80.0, 150, note="published as ~80", **_BIG),
    _r("E6.0", "e6_v7_step0", 70.34, 150, note="v7 base; also E1's second figure; its "
       "notebook is not published: step 1's model less its 5x5 conv", **_E),
    _r("E6.1", "e6_v7_step1", 72.77, 150, note="the authors' notebook shows 73.58", **_E),
    _r("E6.2", "e6_v7_step2", 77.97, 150, note="the authors' notebook shows 77.87", **_E),
    _r("E6.3", "e6_v7_step3", 78.79, 150, **_E),
    _r("E6.4", "e6_v7_step4", 80.42, 150, **_E),
    _r("E6.5", "e6_v7_step5", 82.25, 150, note="the authors' second augmented run "
       "(patience 30), on their own fixed 400-image validation folder", **_E),
)
REPORTS = "ABCDE"

# Why a measured figure differs from the published one, written after the runs that
# experiments/results/ holds (the figures quoted here are ours, from those tables).
WHY: dict[str, str] = {
    "A1": ("below, explained: the stated budget (SGD lr 0.01, batch 128, 20 epochs) "
           "under-trains a 784-10 logistic layer; train accuracy is 89.9% and still rising "
           "at epoch 20 against the published 93.54%. Keras 3 itself, same layer, loss, "
           "optimizer, batch and split (`python -m experiments.keras.check --row A1 "
           "--seeds 3`), gives the same: 90.64+-0.04, train 89.94-90.01%. Readings tried "
           "on seed 0 "
           "(`python -m digitjax.main --config=configs/report_a.py:a1_perceptron "
           "--config.X`): output_activation=softmax 90.79, input_scale=255 (raw pixels) "
           "90.71, loss=binary_cross_entropy 84.94, batch_size=32 (Keras's fit() default) "
           "92.05. Only more SGD steps close the gap; the likeliest reading is that the "
           "course ran fit() at its default batch of 32. The faithful config keeps 128, "
           "the batch the report states."),
    "B3": ("below, explained: Keras itself lands where digitjax does. Trained in Keras 3 "
           "(JAX backend) with the same layers, SGD lr 0.1 momentum 0.9, batch 32, 20 "
           "epochs and the same 54k/6k split (`python -m experiments.keras.check --row B3 "
           "--seeds 3`), 3 seeds gave 97.60+-0.31 (train 99.19-99.47%, no epoch above "
           "98.11); on all 60k with the test set as validation, as the report trained "
           "(`--validation-split test`), 97.85+-0.22 (no epoch above 98.05). digitjax: "
           "97.63+-0.20 here and 97.90+-0.12 that way (`python -m digitjax.main "
           "--config=configs/report_b.py:b3_cnn_single "
           "--config.dataset.validation_split=test --config.num_seeds=3`). At this "
           "learning rate the run overfits from epoch 3-5 (val_loss 0.07 -> 0.13-0.16) and "
           "the test figure swings by 0.5 pts between epochs; the published 98.42 is above "
           "every epoch of the 9 runs that tested each epoch (Keras's 6, digitjax's 3 with "
           "the test set as validation: at most 98.16). Standalone Keras 2.2's clipped "
           "cross-entropy (`--config.loss_clip=1e-7`, seeds run one at a time with "
           "`--config.seed=K`) "
           "gave 97.92+-0.08 on the faithful split and 97.90+-0.27 the report's way: "
           "within the seed noise"),
    "B1": ("reproduced with RMSprop as standalone Keras 2.2 had it, epsilon outside the "
           "square root (configs/report_b.py says why). With it inside, the tf.keras 2 / "
           "Keras 3 rule (`--config.optimizer.eps_in_sqrt=True`), the same 3 seeds gave "
           "98.45+-0.11, above by 0.25 pts (`git show 10db82d:experiments/results/B.md`)."),
    "B4": ("above, explained: the report's 2x2 map. Until 2026-11-23 digitjax built B4 "
           "with Keras's default 'valid' padding everywhere, which leaves a 1x1x64 map "
           "before the dense layers (37,674 params), not the report's 2x2: those 3 seeds "
           "gave 98.28+-0.06, below by 0.61, train accuracy 99.61-99.66% "
           "(`--config.model.conv_paddings=\"('valid','valid','valid')\"`). With the 2x2 "
           "map (first conv 'same', configs/report_b.py says why; 62,250 params) train "
           "accuracy ends at 99.84-99.86%, the published 99.86%, and test at 99.02+-0.04, "
           "0.13 above a report that trained on all 60k images. Other readings, 3 seeds "
           "each (`python -m digitjax.main --config=configs/report_b.py:b4_cnn3_v1 "
           "--config.X --config.seed=K`): RMSprop's epsilon inside the root "
           "(optimizer.eps_in_sqrt=True) 99.10+-0.09; 'same' pooling instead of the "
           "'same' conv (conv_paddings=('valid','valid','valid'), pool_padding=same) "
           "98.92+-0.18 (reproduced). Every 2x2 reading meets the published figure."),
    "B5": ("below by 0.64 pts, explained: the report does not give the dropout rate, and "
           "the figure hangs on it. digitjax reads 0.5 (the Keras examples' value): under "
           "standalone Keras 2.2's RMSprop (epsilon outside the square root) the running "
           "training loss then bottoms out near epoch 7 and climbs after (seed 0: 0.075 -> "
           "0.119 by epoch 19), 81% of the first dense kernel ends with a gradient RMS "
           "below 3.2e-4 (ReLU units die as RMSprop keeps taking lr-sized steps on "
           "near-zero gradients), and train accuracy ends at 96.6-96.9% against the "
           "published 99.02%. At dropout 0.2 the same 3 seeds gave 98.57+-0.08 (98.57, "
           "98.64, 98.49), reproduced, train accuracy 98.61-98.68%; at 0.25 seed 0 gave "
           "98.78 (`python -m digitjax.main --config=configs/report_b.py:b5_cnn3_v2 "
           "--config.model.dropout=0.2 --config.seed=K`). With epsilon inside the root "
           "(`--config.optimizer.eps_in_sqrt=True`) and dropout 0.5 the same seeds gave "
           "98.59+-0.18, also reproduced (`git show 10db82d:experiments/results/B.md`); "
           "Keras 3 itself, whose RMSprop has that rule, gave 98.54+-0.10 at dropout 0.5 "
           "(`python -m experiments.keras.check --row B5 --seeds 3`; train 97.99-98.16%). "
           "The published train accuracy says the report's model dropped out less than "
           "0.5; the faithful config keeps the rate chosen before any run, and the "
           "readings that reproduce are here. Keras 2.2's clipped cross-entropy "
           "(`--config.loss_clip=1e-7`) at dropout 0.5 gave 98.20+-0.11, train accuracy "
           "96.9-97.1%: it does not stop the decay."),
    "B6": ("below by 0.08 pts over 3 seeds (99.46, 99.39, 99.43; best checkpoint 99.44; "
           "train 99.43-99.49% against the published 99.52%), about 8 test images, under "
           "standalone Keras 2.2's RMSprop (epsilon outside the square root). Epsilon "
           "inside (tf.keras 2 / Keras 3, `--config.optimizer.eps_in_sqrt=True`): 99.37+-0.03, "
           "0.14 below (`git show 10db82d:experiments/results/B.md`); Keras 3 itself, "
           "which has that rule: 99.36+-0.05 (99.41, 99.31, 99.36; train 99.50-99.54%; "
           "`python -m experiments.keras.check --row B6 --seeds 3`), half of the 1600x128 "
           "dense kernel ending with a gradient RMS under sqrt(1e-7), where that rule damps "
           "the step. The unstated L2 factor and noise level (read as 1e-4 and std 0.1, the "
           "usual Keras-tutorial values): experiments/sweep/specs/cnn_bn_readings.py's l2 "
           "{0, 1e-4, 1e-3} x noise std {0, 0.1, 0.2}, 3 seeds each on an H200, landed at "
           "99.40-99.48 per point (std 0.01-0.07; the faithful point 99.41+-0.07), 2 of the "
           "27 runs at 99.51: no reading closes the gap beyond seed noise, the published "
           "99.51 is one run at the top of the spread. configs/cnn_bn_plus.py (B6 plus "
           "rotation/zoom/shift augmentation) is the improvement config: docs/report_b.md"),
    "B6a": ("reproduced, all 3 seeds on an H200 (seeds trained together): they stopped "
            "after 43, 23 and 33 epochs and restored epochs 37, 17 and 27 (99.53, 99.32, "
            "99.49); the report's run stopped after 69. Under the tf.keras 2 RMSprop rule "
            "(`git show 10db82d:experiments/results/B.md`) seed 0 stopped after 23 (99.38). "
            "Across B6a-B6c the test figure follows where a run happened to stop more than "
            "the early-stopping settings"),
    "B6b": ("above by 0.32 pts: our 3 seeds stopped after 23, 21 and 29 epochs and "
            "restored epochs 17, 15 and 23 (99.35, 99.33, 99.45; seeds 1-2 on an H200), as "
            "Keras's restore_best_weights would. The report's run stopped after 15, so it "
            "restored epoch 9. min_delta 1e-3 is about val_loss's epoch-to-epoch swing "
            "here (0.002-0.004), so when training stops is mostly chance, and an early stop "
            "restores a weaker epoch"),
    "B6c": ("reproduced: stopped after 21, 21 and 31 epochs (the report: about 27) and "
            "restored epochs 17, 17 and 27 (99.35, 99.32, 99.33; seeds 1-2 on an H200). "
            "Under the tf.keras 2 RMSprop rule 2 seeds gave 99.33+-0.07 "
            "(`git show 10db82d:experiments/results/B.md`)"),
    "D1-30": ("below by 0.12 pts over 5 seeds (91.60, 91.62, 91.76 on this CPU, seeds 0, "
              "3, 4; 91.76 and 91.56 on an H200, seeds 1-2): at epoch 30, "
              "tf.keras's Adadelta (lr 1e-3) is on a slow climb, val accuracy +0.12-0.14 "
              "pts per epoch in the 700-epoch runs (epochs 30-32), so the gap is one epoch "
              "of that climb, against a published figure that is one run. Keras 3 itself "
              "(TensorFlow backend) gives 91.61+-0.10 over 3 seeds "
              "(experiments/results/keras_check/D1-30.json)"),
    "D1": ("needs ~12 min on an H200 and a device call is at most 10: 3 seeds trained "
           "together reached epoch 588 of 700 in one call (val accuracy 98.07, 98.18, "
           "98.25; val_loss 0.060, 0.059, 0.056 and still falling; the published test "
           "figure is 98.29 at loss 0.0517), and their checkpoints (86 MB) are over what a "
           "call carries back. The loop is host-bound there (~2 ms per step; the GPU busy "
           "0-70%); the config now runs 100 steps per dispatch for the next GPU lease. On "
           "this CPU, 700 epochs at 77 s is ~15 h per seed: D1-30 is the CPU-feasible "
           "figure"),
    "D2": ("as D1: 3 seeds together reached epoch 403 of 700 in one H200 call shared with "
           "D1 (val accuracy 97.48, 97.20, 97.15; published test 97.94 at 700). On this "
           "CPU an epoch takes 17-18 s (100 steps per dispatch), so 700 epochs are ~3.5 h "
           "per seed, more than a session here: D2-30 is the CPU-feasible figure. Seed 0, "
           "resumed over three sessions (`python -m experiments.reproduce --report D --rows "
           "D2 --heavy --seeds 1`), reached epoch 475 (val accuracy 97.65, val_loss 0.0817 "
           "and still falling) before its workdir was lost: these machines keep no runs/ "
           "between sessions"),
    "E1": ("reproduced over 3 seeds on this CPU (2026-11-30, under load): best val 67.85, "
           "68.53, 66.62 at epochs 15, 8 and 5; training accuracy reaches 97-98% by epoch 9 and "
           "val_loss rises from epoch 3-5, so early stopping (patience 10 on val_accuracy) "
           "ends the runs after 15-25 epochs, as an overfitting small CNN on 2,936 photos "
           "would"),
    "E6.0": ("reproduced over 3 seeds on this CPU (2026-11-30/12-01, 48-76 s an epoch): "
             "best val 71.66, 70.57, 72.07 at epochs 8, 5 and 21; training accuracy passes "
             "95% while val_loss rises from epoch 4, so early stopping ends the runs after "
             "18, 15 and 31 epochs. Read from the authors' notebooks (docs/report_e.md "
             "note 5); the first reading of the ladder (Conv 32/64/128 'same', D 512, raw "
             "pixels) had reached 47.55% in 23 epochs"),
    "E6.1": ("seeds 0-2 (this CPU, 2026-12-01, 38-67 s an epoch): best val 78.20, "
             "76.16 and 77.11% at epochs 16, 17 and 18, 3.4-5.4 pts above the published "
             "72.77 and 2.6-4.6 above the notebook's 73.58; early stopping ended them "
             "after 26, 27 and 28 epochs, the authors' run after 24. Keras itself on the "
             "same split (`python -m experiments.keras.check --row E6.1 --seeds 1 "
             "--first-seed <k> --backend tensorflow`, the notebook's model from "
             "experiments/keras/models.py, 2026-12-01; keras_check/E6.1.json, "
             "E6.1-s1.json, E6.1-s2.json): best val 74.80, 74.80 and 76.02% for seeds 0-2 "
             "(epochs 8 of 18, 11 of 21, 9 of 19), 75.21 +- 0.71, 95% CI 73.46-76.96: "
             "above the published figure as digitjax is. So the gap to the report is the "
             "data (tf_flowers and this split, not the report's Kaggle set). digitjax's "
             "mean is 1.95 pts above Keras's, not significant over 3 seeds each (Welch "
             "t = 2.72, p = 0.06)"),
    "E6.2": ("seed 0 (this CPU, 2026-12-01, 46 s an epoch alone): best val 80.79% at "
             "epoch 51, 2.8 pts above the published 77.97 (notebook 77.87); early stopping "
             "ended it after 61 epochs, the authors' run after 63. Training accuracy only "
             "88%: the block dropout keeps it from the overfitting of steps 0-1. One seed, "
             "no verdict"),
    "E6.3": ("seed 0 (this CPU, 2026-12-01, 50-57 s an epoch alone): best val 81.74% at "
             "epoch 50, 3.0 pts above the published 78.79 (the notebook's own figure); "
             "early stopping ended it after 60 epochs, the authors' run after 69; training "
             "accuracy 94% at the end; the wall time counts 50 min paused (SIGSTOP) while "
             "E6.2 ran. One seed, no verdict"),
    "E6.4": ("seed 0 (this CPU, 2026-12-01, 88-93 s an epoch alone): best val 82.43% at "
             "epoch 28, 2.0 pts above the published 80.42 (the notebook's own figure); "
             "early stopping ended it after 38 epochs, the authors' run after 36. One seed, "
             "no verdict"),
    "E6.5": ("reproduced over 3 seeds (this CPU, 2026-12-01, 56-93 s an epoch alone): "
             "best val 80.93% at epoch 32, 85.01% at 58 and 83.51% at 60, against the "
             "published 82.25; early stopping (patience 30) ended them after 62, 88 and 90 "
             "epochs, the authors' run after 78. The val curve swings from epoch 8 on "
             "(seed 0: 23-81% after epoch 20, median 51%) while train accuracy climbs to "
             "94-97%: the BatchNorm moving averages, not the weights. `python -m "
             "experiments.batchnorm_eval --workdir runs/reproduce/E6.5/seed<k> --which "
             "best|latest` evaluates each seed's best and latest checkpoints with the "
             "moving averages / each val batch's own statistics / statistics re-estimated "
             "over the training images: seed 0 (epochs 32, 62) 80.93, 67.17 / 81.61, 82.02 "
             "/ 82.97, 83.79; seed 1 (58, 88) 85.01, 82.43 / 83.79, 83.79 / 85.97, 85.29; "
             "seed 2 (60, 90) 83.51, 81.74 / 84.20, 83.24 / 84.74, 85.42. Re-estimated "
             "statistics beat the logged figure on all six checkpoints (by 1-17 pts): the "
             "weights are better than the curve says, and which epoch early stopping keeps "
             "is a draw. Keras keeps the same momentum 0.99, so the authors' best epoch was "
             "such a draw too"),
    "C2": ("above, explained: Keras itself lands where digitjax does. Trained in Keras 3 "
           "(JAX backend) with the same layers, Adam at Keras's defaults, batch 32, 15 "
           "epochs and the same 54k/6k split (`python -m experiments.keras.check --row C2 "
           "--seeds 3`, 2026-11-30): 98.44+-0.03% test (98.45, 98.41, 98.46; train "
           "99.09-99.15% against the published 99.27), against digitjax's 98.48+-0.02. The "
           "report gives no batch size for C2 (Keras's default 32 here); the only code it "
           "prints, C3's, fits with batch_size=128 on all 60,000 images, so the published "
           "98.22 most likely comes from another batch size or run, not from the layers"),
    "D3": ("reading checked against the report's text: net1 on CIFAR-10 'con adam y "
           "adadelta', 30 epochs, batch 128, validation_split 0.2 (its log shows 313 steps "
           "per epoch: 40,000 training images), optimizers at tf.keras's defaults. Keras's "
           "validation_split holds out the last 20% of the arrays; digitjax holds out a "
           "seeded random 20%, since this CIFAR-10 copy is stored in class order and a "
           "tail slice would hold two classes. Seed 0 (this CPU under load, 61 min): 65.79% "
           "test accuracy with its last epoch's weights (published 64.69). Its epoch 30 "
           "matches the report's log: train accuracy 98.94% against 98.89, val_loss 2.85 "
           "against 2.86, val accuracy 66.83% against 65.51. Its best val_loss checkpoint "
           "(epoch 4) scores 68.33%: Adam overfits net1 from epoch 5 (val_loss 0.91 -> "
           "2.85), in the report's log too. Seeds 1 and 2 (this CPU, 2026-11-30, 72 and "
           "~40 min): 65.29% and 64.49% with last-epoch weights, 67.96% and 67.46% from "
           "their best val_loss checkpoints (epochs 5 and 4). Over the 3 seeds 65.19 +- "
           "0.66%: the published 64.69 lies inside the 95% interval, reproduced"),
    "D4": ("as D3, with tf.keras's Adadelta (lr 1e-3, the reading D1 supports). Seed 0, "
           "trained over three sessions (resumed twice; the wall time shown is the last "
           "part's), ends at 32.92% test (published 33.94), still climbing slowly as in "
           "the report: at epoch 30 train accuracy 33.17% against the log's 34.72, val "
           "accuracy 32.56% against 33.99, val_loss 1.958 against 1.924. Seed 1 (this CPU, "
           "2026-11-30, 26 min): 34.81% (val accuracy 34.44% at epoch 30). Seed 2 (resumed "
           "from its epoch-1 checkpoint, 2026-11-30): 33.73%. Over the 3 seeds 33.82 +- "
           "0.95%, 95% CI 31.46-36.18: the published 33.94 lies inside, reproduced"),
}

# What one seed of a row costs on this 2-core CPU, shown in the notes while it has no run.
COST: dict[str, str] = {
    "B2a": "20 epochs of keras_cnn at ~85-140 s each, 30-45 min per seed here",
    "B6a": "~70 epochs of cnn_bn at ~60 s each, ~70 min per seed here",
    "B6b": "~15-25 epochs of cnn_bn at ~50 s each, 12-20 min per seed here",
    "B6c": "~27 epochs of cnn_bn at ~60 s each, ~30 min per seed here",
    "D1-30": "30 epochs at ~77 s each, ~39 min per seed (measured)",
    **{row: (f"{s:,} s per epoch measured here under load (experiments/results/"
             f"epoch_cost_cpu_loaded.json; D1's epoch took 266 s there, 77 s idle), {budget}: "
             f"{where}") for row, s, budget, where in (
        ("D3", 280, "30 epochs, 2.3 h per seed under that load", "a CPU session holds one seed"),
        ("D4", 207, "30 epochs, 1.7 h per seed under that load", "a CPU session holds one seed"),
        ("E1", 144, "up to 150 epochs, early stopping (patience 10)", "~25 epochs, ~1 h a seed"))},
    # idle (2026-12-07, `python -m experiments.perf.epoch_cost --rows E2-sgd,E5-sgd,E3-sgd,
    # E4-sgd,D1,D2 --steps 3`, the one training stopped meanwhile): each optimizer costs
    # its network's figure
    **{row: (f"{s:,} s per epoch measured here idle (experiments/results/epoch_cost_cpu."
             f"json), {budget}: {where}") for row, s, budget, where in (
        *((f"E2-{o}", 79, "up to 150 epochs (3.3 h), early stopping (patience 10)",
           "the CPU campaign trains it (docs/report_e.md, plan)")
          for o in ("adam", "adadelta", "adagrad", "sgd")),
        *((f"E3-{o}", 1167, "up to 200 epochs (65 h), early stopping", "needs a GPU: "
           "experiments/gpu_jobs.txt") for o in ("adam", "adadelta", "adagrad", "sgd")),
        *((f"E4-{o}", 2805, "224 px, up to 150 epochs (117 h), early stopping",
           "needs a GPU: experiments/gpu_jobs.txt") for o in ("adam", "adadelta", "adagrad",
                                                               "sgd")),
        *((f"E5-{o}", 185, "up to 150 epochs (7.7 h), early stopping (patience 10)",
           "the CPU campaign trains it (docs/report_e.md, plan)") for o in ("adadelta", "sgd")))},
}

# E6 as transcribed from the notebooks (2026-11-30): `python -m experiments.perf.epoch_cost
# --rows E1,E6.0,...,E6.5 --steps 10` beside one training job (load 2.6; E6.0 alone took
# 47 s an epoch): experiments/results/epoch_cost_e6_cpu.json.
COST.update({row: (f"{s} s per epoch measured here beside one training job "
                   "(experiments/results/epoch_cost_e6_cpu.json); the authors' run stopped "
                   f"after {n} epochs: {where}")
             for row, s, n, where in (
                 ("E6.1", 116, 24, "a CPU session holds a seed"),
                 ("E6.2", 80, 63, "about 1.5 h a seed"), ("E6.3", 87, 69, "about 1.5 h a seed"),
                 ("E6.4", 164, 36, "about 1.5 h a seed"),
                 ("E6.5", 175, 78, "patience 30, 3-4 h a seed; experiments/gpu_jobs.txt"))})


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
  return digitjax_config.from_file(os.path.join(ROOT, path), arg or None)
