"""
=======================================================
DToP: dynamic token pruning for ViT segmentation
=======================================================

A plain ViT segmenter spends the same compute on every patch, although most of
an image (flat background, object interiors) is easy. DToP cuts the backbone
into stages with auxiliary per-token heads; at the end of a stage, tokens whose
top class probability exceeds ``p0`` keep that stage's prediction and leave
the sequence (except the ``k`` most confident per class, kept for context).

This example trains a small ViT on synthetic shapes with the paper's two-step
recipe (plain training, then fine-tuning with pruning active), compares it
with the same network pruned at prediction only, and shows which tokens
exited at which stage.
"""

# %%
# Data and two models
# -------------------
# Both models train until their validation mIoU has not improved for 3 epochs
# (``early_stopping`` with ``validation_data``), in every phase. ``plain`` is
# step 1 alone (``finetune_iter=0``): it is trained without pruning, and
# pruning happens at prediction only. ``recipe`` adds the default fine-tuning
# step with pruning at ``p0`` active in the training forward, so its later
# blocks and heads learn on the pruned computation.
import copy

import matplotlib.pyplot as plt
import numpy as np
import torch

from neural.segmentation import DToPSegmenter, make_segmentation

torch.set_num_threads(1)  # tiny models: one thread is fastest on a shared machine

X, masks = make_segmentation(240, image_size=32, random_state=0)
X_val, masks_val = make_segmentation(60, image_size=32, random_state=2)
X_test, masks_test = make_segmentation(100, image_size=32, random_state=1)

# 64 tokens of 4x4 pixels; heads after blocks 1 and 2 and the final block 4
small = dict(k=3, patch_size=4, embed_dim=32, depth=4, num_heads=2, stage_ends=(1, 2),
             max_iter=60, early_stopping=True, n_iter_no_change=3, random_state=0,
             device="cpu")
plain = DToPSegmenter(finetune_iter=0, **small).fit(X, masks, validation_data=(X_val, masks_val))
recipe = DToPSegmenter(**small).fit(X, masks, validation_data=(X_val, masks_val))
p0 = recipe.p0
print(f"recipe: p0={p0}, {recipe.n_iter_} epochs in all "
      f"({sum(h['pruned'] == 0 for h in recipe.history_)} plain, then fine-tuning)")

# %%
# Accuracy against compute
# ------------------------
# ``predict(..., return_report=True)`` also returns the compute of this
# prediction: tokens active per stage and analytic FLOPs per image. ``p0`` can
# be changed on a fitted model (``set_params``) to trade accuracy for compute;
# ``p0=1.0`` is the unpruned network.
rows = {}
for name, model in (("pruned at prediction only", plain), ("two-step recipe", recipe)):
    rows[name] = []
    for q in sorted({1.0, 0.999, p0, 0.9, 0.8}, reverse=True):
        est = copy.copy(model).set_params(p0=q)
        pred, report = est.predict(X_test, return_report=True)
        rows[name].append((q, est.score(X_test, masks_test), report.flops.mean() / 1e6))
        print(f"{name:26s} p0={q:<4}  mIoU {rows[name][-1][1]:.3f}  " + report.summary())

fig, ax = plt.subplots(figsize=(5, 3.5))
for name, points in rows.items():
    ax.plot([r[2] for r in points], [r[1] for r in points], "o-", label=name)
    for q, miou, mflops in points:
        ax.annotate(f"{q:g}", (mflops, miou), fontsize=7, textcoords="offset points",
                    xytext=(4, 4))
ax.set_xlabel("MFLOPs per image")
ax.set_ylabel("test mIoU")
ax.set_title("Accuracy vs compute (labels: p0)")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# Which tokens exited where
# -------------------------
# Flat regions leave at the first stage; boundaries go through all blocks.
pred, report = recipe.predict(X_test[:3], return_report=True)
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
# ``benchmarks/bench_dtop.py`` measures the recipe on larger data against
# unpruned models trained for the same number of epochs; see the user guide.
print(f"tokens kept per stage at p0={p0}: {np.round(report.tokens_active.mean(0), 1)}")
