"""
==================================================================
Training neural estimators: datasets, callbacks, resuming a fit
==================================================================

Every estimator of ``neural`` trains through the same loop. This example
shows what that loop offers, on :class:`~neural.local.LocalLearningClassifier`
(the same holds for the segmenters and the text classifier):

* training from a folder of image files read lazily, item by item;
* training until the validation score stops improving, with a learning-rate
  schedule of :mod:`torch.optim.lr_scheduler`, checkpoints and a CSV log as
  callbacks;
* any :mod:`torch.optim` optimizer, here AdamW;
* a fit that is interrupted, then resumed from its checkpoint, ending with
  exactly the model of the uninterrupted fit.
"""

# %%
# A folder of images
# ------------------
# We write synthetic shapes as PNG files, one sub-folder per class; a user
# would point at their own folder. :class:`~neural.datasets.ImageFolderDataset`
# reads one image per item, so the data never has to fit in memory.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

from neural import LocalLearningClassifier
from neural.callbacks import Callback, Checkpoint, CSVLogger, LRScheduler
from neural.datasets import SHAPE_NAMES, ImageFolderDataset, make_shapes

torch.set_num_threads(1)  # tiny models: one thread is fastest on a shared machine
root = Path(tempfile.mkdtemp())
X, y = make_shapes(600, image_size=16, n_classes=5, noise=0.15, random_state=0)
for i, (img, label) in enumerate(zip(X, y)):
    folder = root / "images" / SHAPE_NAMES[label].replace(" ", "_")
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray((img.transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(
        folder / f"{i:04d}.png")

train = ImageFolderDataset(root / "images")
print(len(train), "images of classes", train.classes)
X_val, y_val = make_shapes(300, image_size=16, n_classes=5, noise=0.15, random_state=1)
y_val = np.array([SHAPE_NAMES[c].replace(" ", "_") for c in y_val])

# %%
# Callbacks and an optimizer
# --------------------------
# The fit runs until the validation accuracy has not improved for 4 epochs
# (``early_stopping=True`` with ``validation_data``; the best epoch's weights
# are kept), and a ``ReduceLROnPlateau`` schedule cuts the learning rate
# whenever the validation accuracy stalls for an epoch. A checkpoint is written
# every two epochs (and of the best validation score), and the history as CSV.
# The options of the estimator itself are callbacks too: its default cosine
# schedule is an ``LRScheduler`` (the one passed here replaces it), and
# ``early_stopping`` / ``n_iter_no_change`` are an ``EarlyStopping``.


def make_classifier(*callbacks):
    return LocalLearningClassifier(
        method="dgl", n_local_modules=2, backbone="resnet8", width=8, batch_size=64,
        max_iter=60, solver="adamw", learning_rate_init=0.01, weight_decay=0.01,
        early_stopping=True, n_iter_no_change=4, random_state=0, device="cpu",
        callbacks=[LRScheduler("ReduceLROnPlateau", mode="max", factor=0.3, patience=1),
                   *callbacks],
    )


checkpoints = root / "checkpoints"
clf = make_classifier(Checkpoint(checkpoints, every=2), CSVLogger(root / "history.csv"))
clf.fit(train, validation_data=(X_val, y_val))
print("files:", sorted(p.name for p in checkpoints.iterdir()))
print("validation accuracy per epoch:", np.round(clf.validation_scores_, 3))
print(f"stopped after epoch {clf.n_iter_}; best epoch {np.argmax(clf.validation_scores_) + 1}")

# %%
# An interrupted fit, resumed
# ---------------------------
# A callback stops the fit in epoch 5 by raising, as a crash or a cluster's
# time limit would. The fit resumes from the last checkpoint, written after
# epoch 4: same epoch, same schedule, same minibatch order and random draws.
# On CPU the result equals the uninterrupted fit bit for bit.


class Crash(Callback):
    def on_epoch_end(self, estimator, epoch, **kwargs):
        if epoch == 5:
            raise RuntimeError("the machine went away")


interrupted = make_classifier(Checkpoint(root / "run2", every=2), Crash())
try:
    interrupted.fit(train, validation_data=(X_val, y_val))
except RuntimeError as exc:
    print("fit stopped:", exc, "in epoch", interrupted.n_iter_)

resumed = make_classifier().fit(train, validation_data=(X_val, y_val),
                                resume_from=root / "run2" / "epoch_0004.pt")
same = all(torch.equal(a, b) for a, b in zip(resumed.module_.state_dict().values(),
                                             clf.module_.state_dict().values()))
print("resumed model == uninterrupted model:", same)

# %%
# What the loop recorded
# ----------------------
# ``history_`` holds one record per epoch; the learning rate shown is the one
# at the start of each epoch.
epochs = [h["epoch"] for h in clf.history_]
fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
axes[0].plot(epochs, [h["loss"] for h in clf.history_], "o-", label="uninterrupted")
axes[0].plot(epochs, [h["loss"] for h in resumed.history_], "x--", label="resumed after 4")
axes[0].set(xlabel="epoch", ylabel="training loss (output head)")
axes[0].legend()
axes[1].plot(epochs, clf.validation_scores_, "o-")
axes[1].set(xlabel="epoch", ylabel="validation accuracy")
axes[2].plot(epochs, [h["lr"] for h in clf.history_], "o-")
axes[2].set(xlabel="epoch", ylabel="learning rate")
fig.tight_layout()
plt.show()
