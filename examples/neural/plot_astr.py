"""
=====================================================
ASTR: video lesion segmentation with sparse context
=====================================================

ASTR segments every frame of an ultrasound video from a short clip (the frame
and two earlier ones). A body head on the earlier frames picks the positions
near the lesion; only those become context tokens for one cross-attention
block. Scanning-mode augmentation converts every training video between the
linear (rectangular) and sector (fan) geometry of ultrasound probes.

This example trains ASTR and the same network on single frames on synthetic
linear-probe videos and tests both on sector-probe videos.
"""

# %%
# Synthetic videos and the scanning-mode conversion
# -------------------------------------------------
import matplotlib.pyplot as plt
import torch

from neural.video import ASTRSegmenter, linear_to_sector, make_ultrasound_videos

torch.set_num_threads(1)

X, M, _ = make_ultrasound_videos(12, n_frames=6, scan_mode="linear", random_state=0)
X_val, M_val, _ = make_ultrasound_videos(4, n_frames=6, scan_mode="linear", random_state=2)
Xt, Mt, _ = make_ultrasound_videos(6, n_frames=6, scan_mode="sector", random_state=1)

fig, axes = plt.subplots(1, 4, figsize=(8, 2.2))
for ax, img, title in zip(axes, [X[0, 0], M[0, 0], linear_to_sector(X[0, 0]),
                                 linear_to_sector(M[0, 0])],
                          ["linear frame", "mask", "as sector", "mask as sector"]):
    ax.imshow(img, cmap="gray")
    ax.set_title(title, fontsize=8)
    ax.axis("off")

# %%
# Train on linear scans, test on sector scans
# -------------------------------------------
# Each model trains at a constant learning rate until its Dice on other linear
# videos has not improved for 5 epochs (``early_stopping`` with
# ``validation_data``) and keeps its best epoch.
scores = {}
for name, T in (("single frame", 1), ("ASTR", 3)):
    est = ASTRSegmenter(T, scan_augment=True, max_iter=60, learning_rate="constant",
                        early_stopping=True, n_iter_no_change=5, random_state=0, device="cpu")
    est.fit(X, M, validation_data=(X_val, M_val))
    scores[name] = est.score(Xt, Mt)
    print(f"{name}: Dice on sector videos = {scores[name]:.3f} ({est.n_iter_} epochs)")
print(f"context tokens per frame: {est.context_tokens(Xt).mean():.1f} of {2 * 8 * 8}")

# %%
# ASTR's predictions on a sector test clip
pred = est.predict(Xt[:1])[0]
fig, axes = plt.subplots(2, 4, figsize=(8, 4))
for t in range(4):
    axes[0, t].imshow(Xt[0, t], cmap="gray")
    axes[0, t].contour(Mt[0, t], levels=[0.5], colors="lime", linewidths=0.8)
    axes[1, t].imshow(pred[t], cmap="gray")
    axes[0, t].set_title(f"frame {t}", fontsize=8)
    for ax in axes[:, t]:
        ax.axis("off")
axes[1, 0].set_title("predicted", fontsize=8)
plt.show()
