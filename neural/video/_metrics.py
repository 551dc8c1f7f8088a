"""Per-frame segmentation metrics of binary lesion masks (averaged over frames)."""

import numpy as np

__all__ = ["dice_score", "segmentation_scores"]


def _frames(a, name):
    if isinstance(a, (list, tuple)):
        a = np.concatenate([np.asarray(v).reshape(-1, *np.shape(v)[-2:]) for v in a])
    a = np.asarray(a)
    if a.ndim < 2:
        raise ValueError(f"{name} must be masks of shape (..., H, W); got shape {a.shape}.")
    return a.reshape(-1, *a.shape[-2:])


def segmentation_scores(y_true, y_pred, proba=None):
    """Dice, IoU, sensitivity, specificity and MAE, per frame then averaged.

    A frame where a quantity is 0/0 (e.g. Dice of an empty mask predicted
    empty) scores 1 for it.

    Parameters
    ----------
    y_true : array-like of shape (..., H, W) or list of such arrays
        True binary masks (any shape whose last two axes are the frame).
    y_pred : same structure
        Predicted binary masks.
    proba : same structure or None, default=None
        Lesion probabilities; the MAE is taken on each frame's min-max
        normalised map, as ASTR reports it. None: MAE of ``y_pred``.

    Returns
    -------
    scores : dict of str to float
        ``dice``, ``iou``, ``sensitivity``, ``specificity``, ``mae``.
    """
    t = _frames(y_true, "y_true").astype(bool)
    p = _frames(y_pred, "y_pred").astype(bool)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.shape[0]} frames of {t.shape[1:]} but y_pred has "
                         f"{p.shape[0]} frames of {p.shape[1:]}.")
    tp = (t & p).sum((1, 2)).astype(float)
    fp = (~t & p).sum((1, 2)).astype(float)
    fn = (t & ~p).sum((1, 2)).astype(float)
    tn = (~t & ~p).sum((1, 2)).astype(float)

    def ratio(a, b):
        return np.where(b > 0, a / np.maximum(b, 1), 1.0).mean()

    if proba is None:
        prob = p.astype(float)
    else:
        prob = _frames(proba, "proba").astype(float)
        lo = prob.min((1, 2), keepdims=True)
        prob = (prob - lo) / np.maximum(prob.max((1, 2), keepdims=True) - lo, 1e-8)
    return {
        "dice": float(ratio(2 * tp, 2 * tp + fp + fn)),
        "iou": float(ratio(tp, tp + fp + fn)),
        "sensitivity": float(ratio(tp, tp + fn)),
        "specificity": float(ratio(tn, tn + fp)),
        "mae": float(np.abs(prob - t).mean()),
    }


def dice_score(y_true, y_pred):
    """Mean per-frame Dice ``2 |A & B| / (|A| + |B|)`` of binary masks.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (..., H, W) or lists of such arrays
        True and predicted binary masks.

    Returns
    -------
    dice : float
        In [0, 1]; frames with both masks empty count as 1.
    """
    return segmentation_scores(y_true, y_pred)["dice"]
