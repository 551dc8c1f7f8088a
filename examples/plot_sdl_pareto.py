"""
==================================================================
Accuracy vs reconstruction: SDL when the label atoms are different
==================================================================

Supervised dictionary learning pays off when the directions that *explain* the features are not
the ones that *predict* the label. This example builds the paper's semi-synthetic construction
with scikit-learn's bundled digits (:func:`sdlearn.datasets.make_digit_dictionary_classification`):
features are noisy mixtures of images of the digits 2 and 5, while the labels are drawn from a
logistic model that reads the features through images of the digits 4 and 7.

A two-step pipeline (PCA or NMF, then logistic regression) keeps the directions of largest
variance and loses the label direction; :class:`sdlearn.SDLClassifier` trades a little
reconstruction for it, and the weight ``xi`` of the reconstruction term moves along that
trade-off. We sweep ``xi`` and draw test accuracy against test reconstruction error.

See :ref:`applications` for the full benchmark and its numbers.
"""

# %%
# Data
# ----
# 400 samples of 16 x 16 images (``zoom=2`` upsamples the 8 x 8 digits), half for training.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import NMF, PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from sdlearn import SDLClassifier
from sdlearn.datasets import make_digit_dictionary_classification

data = make_digit_dictionary_classification(n_samples=400, zoom=2, noise=0.5, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(
    data.data, data.target, test_size=0.5, stratify=data.target, random_state=0
)
print(f"features {X_train.shape}; label atoms differ from feature atoms")

fig, axes = plt.subplots(2, 6, figsize=(8, 3))
for j in range(6):
    axes[0, j].imshow(data.dictionary[3 * j].reshape(data.image_shape), cmap="gray_r")
    axes[1, j].imshow(data.discriminative_dictionary[3 * j].reshape(data.image_shape), cmap="gray_r")
for ax in axes.ravel():
    ax.set_axis_off()
axes[0, 0].set_title("feature atoms (2, 5)", loc="left", fontsize=9)
axes[1, 0].set_title("label atoms (4, 7)", loc="left", fontsize=9)


# %%
# Baselines and the xi sweep
# --------------------------
# The reconstruction error is ``||X - X_hat|| / ||X||`` on the test set. Every model is fitted
# to convergence: the solvers stop when the objective's decrease, relative to the classifier's
# part of it, falls below ``tol`` (within a few dozen to about a hundred iterations here).
def recon_error(X, X_hat):
    return np.linalg.norm(X - X_hat) / np.linalg.norm(X)


r = 3
results = {}
logreg = LogisticRegression(max_iter=5000).fit(X_train, y_train)
results["LogisticRegression"] = (np.nan, logreg.score(X_test, y_test))
pca = make_pipeline(PCA(r), StandardScaler(), LogisticRegression(max_iter=5000)).fit(X_train, y_train)
results["PCA + LR"] = (
    recon_error(X_test, pca[0].inverse_transform(pca[0].transform(X_test))),
    pca.score(X_test, y_test),
)
scaler = MinMaxScaler(clip=True).fit(X_train)
nmf = make_pipeline(scaler, NMF(r, max_iter=1000, random_state=0), StandardScaler(), LogisticRegression(max_iter=5000))
nmf.fit(X_train, y_train)
codes = nmf[1].transform(scaler.transform(X_test))
results["NMF + LR"] = (
    recon_error(X_test, scaler.inverse_transform(nmf[1].inverse_transform(codes))),
    nmf.score(X_test, y_test),
)

xis = [1e-3, 1e-2, 1e-1, 1.0, 10.0]
sweep = {"filter": [], "feature": []}
for mode in sweep:
    for xi in xis:
        clf = SDLClassifier(r, mode=mode, xi=xi, tol=1e-8, max_iter=1000, random_state=0)
        clf.fit(X_train, y_train)
        X_hat = clf.inverse_transform(clf.transform(X_test))
        sweep[mode].append((recon_error(X_test, X_hat), clf.score(X_test, y_test)))

for name, (rec, acc) in results.items():
    print(f"{name:20s} accuracy {acc:.3f}  reconstruction error {rec:.4f}")
for mode, points in sweep.items():
    for xi, (rec, acc) in zip(xis, points):
        print(f"SDL {mode:7s} xi={xi:<6g} accuracy {acc:.3f}  reconstruction error {rec:.4f}")

# %%
# The Pareto plot
# ---------------
# Small ``xi`` buys accuracy with a slightly larger reconstruction error; large ``xi`` converges
# to the two-step solution. Filter mode gains the most: its classifier reads ``W^T x`` and can
# devote one atom to the label direction.
fig, ax = plt.subplots(figsize=(6.5, 4.5))
for i, (mode, points) in enumerate(sweep.items()):
    rec, acc = np.array(points).T
    ax.plot(rec, acc, "-o", color=f"C{i}", label=f"SDL {mode} (xi sweep)")
    for xi, x_, y_ in zip(xis, rec, acc):
        ax.annotate(f"{xi:g}", (x_, y_), fontsize=7, textcoords="offset points", xytext=(4, 2))
for j, (name, (rec, acc)) in enumerate(results.items()):
    if np.isnan(rec):
        ax.axhline(acc, ls="--", color=f"C{2 + j}", label=name)
    else:
        ax.plot(rec, acc, "s", color=f"C{2 + j}", label=name)
ax.set_xlabel("test reconstruction error")
ax.set_ylabel("test accuracy")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.show()
