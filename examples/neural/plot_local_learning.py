"""
======================================================
Local learning: accuracy versus activation memory
======================================================

End-to-end backpropagation (BP) keeps the activations of the whole network
alive until the backward pass. Supervised local learning cuts the network
into gradient-isolated modules, each trained by its own small auxiliary
network, so only one module's activations are alive at a time.

This example trains a small CIFAR-style ResNet on scikit-learn's digits
(upscaled to 16x16) with BP and four local learning rules, and compares test
accuracy with the peak activation memory measured during training.
"""

# %%
# Data: digits as 1 x 16 x 16 images
# ----------------------------------
import matplotlib.pyplot as plt
import torch
from sklearn.model_selection import train_test_split

from neural import LocalLearningClassifier
from neural.datasets import load_digits_images

torch.set_num_threads(1)  # tiny models: one thread is fastest on a shared machine

X, y = load_digits_images(image_size=16)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, random_state=0, stratify=y
)
print(X_train.shape)

# %%
# Train every method with the same backbone, stopping rule and seed
# ------------------------------------------------------------------
# Each trains at a constant learning rate until its accuracy on a held-out
# tenth of the training images has not improved for 3 epochs
# (``early_stopping``), and keeps its best epoch.
#
# A ResNet-20 of width 8 has 10 layers (the stem and 9 residual blocks). DGL,
# InfoPro and MAN cut it into 4 modules; AugLocal uses its own layout, one
# layer per module with the last 3 layers together (K = 10 - 2).
methods = {
    "BP": dict(method="bp"),
    "DGL": dict(method="dgl", n_local_modules=4),
    "InfoPro": dict(method="infopro", n_local_modules=4),
    "DGL+MAN": dict(method="man", man_base="dgl", n_local_modules=4),
    "AugLocal": dict(method="auglocal", n_local_modules=8),
}
results = {}
for name, params in methods.items():
    clf = LocalLearningClassifier(
        backbone="resnet20", width=8, max_iter=40, batch_size=64, learning_rate_init=3e-3,
        learning_rate="constant", early_stopping=True, n_iter_no_change=3,
        random_state=0, device="cpu", **params,
    )
    clf.fit(X_train, y_train)
    results[name] = (clf.score(X_test, y_test), clf.peak_activation_bytes_ / 2**20)
    print(f"{name:9s} accuracy {results[name][0]:.3f}   "
          f"peak activations {results[name][1]:.2f} MiB   epochs {clf.n_iter_:2d}   "
          f"modules {clf.module_bounds_}")

# %%
# Memory against accuracy
# -----------------------
# Local methods save activation memory; how much accuracy they give up
# depends on the auxiliary networks (richer ones, such as MAN's extra blocks,
# cost memory) and on how long they train.
bp_memory = results["BP"][1]
fig, ax = plt.subplots(figsize=(5, 4))
for name, (acc, mem) in results.items():
    ax.scatter(mem / bp_memory, acc, s=60)
    ax.annotate(name, (mem / bp_memory, acc), xytext=(5, 3), textcoords="offset points")
ax.set_xlabel("peak activation memory / BP")
ax.set_ylabel("test accuracy")
ax.set_title("digits 16x16, ResNet-20 (width 8), early stopping")
fig.tight_layout()
plt.show()
