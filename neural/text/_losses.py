"""The loss terms of P2C (Bradley-Terry preference, head diversity, consistency)."""

import torch
from torch.nn import functional as F

__all__ = [
    "preference_loss",
    "diversity_loss",
    "consistency_loss",
    "soft_label_margin_loss",
]


def _as_heads(r):
    return r.unsqueeze(0) if r.dim() == 1 else r


def preference_loss(r1, r2, pref):
    r"""Bradley-Terry loss of pairwise preferences, averaged over heads and pairs.

    For head :math:`m`, :math:`P_m(x_1 \succ x_2) = \sigma(r_m(x_1) - r_m(x_2))`
    and the loss is the cross-entropy with the target ``pref`` (1: ``x1``
    preferred, 0: ``x2`` preferred, 0.5: tie), i.e. the logistic loss on the
    score difference.

    Parameters
    ----------
    r1, r2 : torch.Tensor of shape (n_heads, n_pairs) or (n_pairs,)
        Scores of the first and second text of each pair.
    pref : torch.Tensor of shape (n_pairs,)
        Probability that the first text is preferred, in [0, 1].

    Returns
    -------
    loss : torch.Tensor
        Scalar.
    """
    diff = _as_heads(r1) - _as_heads(r2)
    target = pref.to(diff.dtype).expand_as(diff)
    return F.binary_cross_entropy_with_logits(diff, target)


def diversity_loss(r1, r2):
    r"""Mean cross-entropy between the preference distributions of different heads.

    :math:`\frac{1}{M(M-1)} \sum_{i \ne j} \mathrm{CE}(\mathrm{sg}(P_i), P_j)`,
    averaged over pairs; P2C *subtracts* it from the loss so that the heads
    stay diverse. Zero with one head.

    Parameters
    ----------
    r1, r2 : torch.Tensor of shape (n_heads, n_pairs)
        Scores of the two texts of each pair.

    Returns
    -------
    loss : torch.Tensor
        Scalar.
    """
    diff = _as_heads(r1) - _as_heads(r2)
    M = diff.shape[0]
    if M < 2 or diff.shape[1] == 0:
        return diff.sum() * 0.0
    target = torch.sigmoid(diff).detach()  # (M, n)
    total = diff.new_zeros(())
    for i in range(M):
        for j in range(M):
            if i != j:
                total = total + F.binary_cross_entropy_with_logits(diff[j], target[i])
    return total / (M * (M - 1))


def consistency_loss(p1, p2, pref):
    r"""Hinge between the classifier's confidence gap and the preference.

    With :math:`d = p(y|x_1) - p(y|x_2)`: :math:`\max(0, -d)` when ``x1`` is
    preferred, :math:`\max(0, d)` when ``x2`` is, :math:`|d|` for a tie
    (``pref == 0.5``); averaged over pairs. Zero when the classifier orders the
    pair as the preference does.

    Parameters
    ----------
    p1, p2 : torch.Tensor of shape (n_pairs,)
        Classifier probability of the pair's shared label for each text.
    pref : torch.Tensor of shape (n_pairs,)
        Probability that the first text is preferred, in [0, 1].

    Returns
    -------
    loss : torch.Tensor
        Scalar.
    """
    d = p1 - p2
    pref = pref.to(d.dtype)
    loss = (pref > 0.5) * F.relu(-d) + (pref < 0.5) * F.relu(d) + (pref == 0.5) * d.abs()
    return loss.mean() if loss.numel() else d.sum() * 0.0


def soft_label_margin_loss(proba1, proba2, soft1, soft2):
    r"""Margin loss of P2C's soft-label variant, per pair.

    Over all classes :math:`k`, with :math:`\Delta s = s(x_1) - s(x_2)` (annotator
    soft labels) and :math:`\Delta p = p(x_1) - p(x_2)` (classifier):
    :math:`\sum_k 1\{\Delta s_k \ge 0\} \max(0, \Delta s_k - \Delta p_k) +
    1\{\Delta s_k < 0\} \max(0, \Delta p_k - \Delta s_k)`. Works on torch
    tensors and NumPy arrays alike.

    Parameters
    ----------
    proba1, proba2 : array of shape (..., n_classes)
        Classifier probabilities.
    soft1, soft2 : array of shape (..., n_classes)
        Annotator soft labels.

    Returns
    -------
    loss : array of shape (...)
        Per-pair loss.
    """
    ds = soft1 - soft2
    dp = proba1 - proba2
    pos = ds >= 0
    gap = ds - dp
    if isinstance(gap, torch.Tensor):
        return (pos * F.relu(gap) + (~pos) * F.relu(-gap)).sum(-1)
    import numpy as np

    return (pos * np.maximum(gap, 0) + (~pos) * np.maximum(-gap, 0)).sum(-1)
