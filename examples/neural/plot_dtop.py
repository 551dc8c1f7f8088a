"""
=======================================================
DToP: dynamic token pruning for ViT segmentation
=======================================================

A plain ViT segmenter spends the same compute on every patch, although most of
an image (flat background, object interiors) is easy. DToP cuts the backbone
into stages with auxiliary per-token heads; at the end of a stage, tokens whose
top class probability exceeds ``p0`` keep that stage's prediction and leave
the sequence (except the ``k`` most confident per class, kept for context).

This example trains a small ViT on synthetic shapes, then predicts with a
sweep of thresholds from the same weights, and shows which tokens exited at
which stage.
"""

# %%
# Data and the unpruned model
# ---------------------------
import copy
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from neural.segmentation import DToPSegmenter, make_segmentation

torch.set_num_threads(1)  # tiny models: one thread is fastest on a shared machine
warnings.filterwarnings("ignore", category=ConvergenceWarning)  # short budget on purpose

X, masks = make_segmentation(240, image_size=32, random_state=0)
X_test, masks_test = make_segmentation(60, image_size=32, random_state=1)

# 64 tokens of 4x4 pixels; heads after blocks 1 and 2 and the final block 4
seg = DToPSegmenter(p0=1.0, k=3, patch_size=4, embed_dim=32, depth=4, num_heads=2,
                    stage_ends=(1, 2), max_iter=15, random_state=0, device="cpu")
seg.fit(X, masks)
print(f"unpruned test mIoU: {seg.score(X_test, masks_test):.3f}")

# %%
# Prune at prediction: a sweep of p0 on the same weights
# ------------------------------------------------------
# ``predict(..., return_report=True)`` also returns the compute of this
# prediction: tokens active per stage and analytic FLOPs per image.
rows = []
for p0 in [1.0, 0.99, 0.95, 0.9, 0.8]:
    est = copy.copy(seg).set_params(p0=p0)
    pred, report = est.predict(X_test, return_report=True)
    miou = est.score(X_test, masks_test)
    rows.append((p0, miou, report.flops.mean() / 1e6, report))
    print(f"p0={p0:<4}  mIoU {miou:.3f}  " + report.summary())

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot([r[2] for r in rows], [r[1] for r in rows], "o-")
for p0, miou, mflops, _ in rows:
    ax.annotate(f"p0={p0}", (mflops, miou), fontsize=8, textcoords="offset points",
                xytext=(4, 4))
ax.set_xlabel("MFLOPs per image")
ax.set_ylabel("test mIoU")
ax.set_title("Accuracy vs compute")
fig.tight_layout()

# %%
# Which tokens exited where
# -------------------------
# Flat regions leave at the first stage; boundaries go through all blocks.
p0 = 0.9
pred, report = copy.copy(seg).set_params(p0=p0).predict(X_test[:3], return_report=True)
fig, axes = plt.subplots(3, 4, figsize=(7, 5.4))
for i in range(3):
    axes[i, 0].imshow(X_test[i].transpose(1, 2, 0))
    axes[i, 1].imshow(masks_test[i], vmin=0, vmax=3, cmap="tab10", interpolation="nearest")
    axes[i, 2].imshow(pred[i], vmin=0, vmax=3, cmap="tab10", interpolation="nearest")
    im = axes[i, 3].imshow(report.exit_stage[i] + 1, vmin=1, vmax=3, cmap="viridis",
                           interpolation="nearest")
for ax, title in zip(axes[0], ["image", "true", f"pred (p0={p0})", "exit stage"]):
    ax.set_title(title, fontsize=9)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(im, ax=axes[:, 3], ticks=[1, 2, 3], shrink=0.6)
plt.show()

# %%
# The paper's two-step recipe
# ---------------------------
# Train without pruning, then fine-tune with pruning active in the training
# forward so the heads learn on the pruned computation:
# ``DToPSegmenter(p0=0.9, max_iter=..., finetune_iter=...)``. The benchmark
# ``benchmarks/bench_dtop.py`` compares it with the same extra epochs spent
# without pruning.
print(f"tokens kept per stage at p0={p0}: {np.round(report.tokens_active.mean(0), 1)}")
