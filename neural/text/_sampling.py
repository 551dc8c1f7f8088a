"""Pair sampling for P2C: random, disagreement-based and inconsistency-based partners.

Every sampler receives, for each anchor text, a row of candidate partners
(indices of same-label texts, ``-1`` for padding) and returns one partner per
anchor (``-1`` where an anchor has no candidate).
"""

import numpy as np

__all__ = [
    "head_disagreement",
    "random_partners",
    "disagreement_partners",
    "inconsistency_partners",
]


def _check_candidates(candidates):
    candidates = np.asarray(candidates)
    if candidates.ndim != 2 or not np.issubdtype(candidates.dtype, np.integer):
        raise ValueError(
            "candidates must be a 2-D integer array (n_anchors, n_candidates) with -1 as "
            f"padding; got shape {candidates.shape} and dtype {candidates.dtype}."
        )
    return candidates


def _pick(candidates, cols):
    rows = np.arange(len(candidates))
    out = np.where(cols >= 0, candidates[rows, np.maximum(cols, 0)], -1)
    return out.astype(np.int64)


def random_partners(candidates, random_state):
    """A uniformly random valid candidate per anchor.

    Parameters
    ----------
    candidates : ndarray of shape (n_anchors, n_candidates)
        Candidate partner indices, ``-1`` for padding.
    random_state : numpy.random.RandomState
        Source of randomness.

    Returns
    -------
    partners : ndarray of shape (n_anchors,)
        Chosen partner index, ``-1`` where the row has no candidate.
    """
    candidates = _check_candidates(candidates)
    valid = candidates >= 0
    keys = np.where(valid, random_state.random_sample(candidates.shape), -1.0)
    cols = np.where(valid.any(1), keys.argmax(1), -1)
    return _pick(candidates, cols)


def head_disagreement(scores, anchors, candidates):
    """Number of preference-head pairs that order (anchor, candidate) differently.

    Head ``m`` orders the pair by ``sign(r_m(anchor) - r_m(candidate))``; the
    disagreement is the number of head pairs ``m < m'`` whose signs differ.

    Parameters
    ----------
    scores : ndarray of shape (n_heads, n_samples)
        Score of every head for every text (under the text's own label).
    anchors : ndarray of shape (n_anchors,)
        Index of each anchor.
    candidates : ndarray of shape (n_anchors, n_candidates)
        Candidate partners, ``-1`` for padding.

    Returns
    -------
    disagreement : ndarray of shape (n_anchors, n_candidates)
        Counts (``-1`` at padding).
    """
    scores = np.asarray(scores, dtype=np.float64)
    candidates = _check_candidates(candidates)
    anchors = np.asarray(anchors, dtype=np.int64)
    valid = candidates >= 0
    signs = np.sign(scores[:, anchors][:, :, None] - scores[:, np.maximum(candidates, 0)])
    M = scores.shape[0]
    count = np.zeros(candidates.shape, dtype=np.int64)
    for a in range(M):
        for b in range(a + 1, M):
            count += signs[a] != signs[b]
    return np.where(valid, count, -1)


def disagreement_partners(scores, anchors, candidates, random_state):
    """The candidate on which the preference heads disagree most (random tie-break).

    Parameters
    ----------
    scores : ndarray of shape (n_heads, n_samples)
        Score of every head for every text.
    anchors : ndarray of shape (n_anchors,)
        Index of each anchor.
    candidates : ndarray of shape (n_anchors, n_candidates)
        Candidate partners, ``-1`` for padding.
    random_state : numpy.random.RandomState
        Breaks ties.

    Returns
    -------
    partners : ndarray of shape (n_anchors,)
        Chosen partner index, ``-1`` where the row has no candidate.
    """
    candidates = _check_candidates(candidates)
    count = head_disagreement(scores, anchors, candidates).astype(np.float64)
    keys = np.where(candidates >= 0, count + 0.5 * random_state.random_sample(count.shape), -1.0)
    cols = np.where((candidates >= 0).any(1), keys.argmax(1), -1)
    return _pick(candidates, cols)


def inconsistency_partners(inconsistency, candidates, random_state):
    """Sample candidates with probability proportional to their min-max scaled inconsistency.

    Parameters
    ----------
    inconsistency : ndarray of shape (n_anchors, n_candidates)
        How inconsistent the classifier is with the preference of each pair
        (e.g. :func:`~neural.text.soft_label_margin_loss`), higher is more.
    candidates : ndarray of shape (n_anchors, n_candidates)
        Candidate partners, ``-1`` for padding.
    random_state : numpy.random.RandomState
        Source of randomness.

    Returns
    -------
    partners : ndarray of shape (n_anchors,)
        Chosen partner index, ``-1`` where the row has no candidate; rows whose
        candidates are all equally inconsistent are sampled uniformly.
    """
    candidates = _check_candidates(candidates)
    valid = candidates >= 0
    w = np.where(valid, np.asarray(inconsistency, dtype=np.float64), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"), _quiet():
        lo = np.nanmin(w, axis=1, keepdims=True)
        hi = np.nanmax(w, axis=1, keepdims=True)
        w = (w - lo) / (hi - lo)
    w = np.where(valid, np.nan_to_num(w, nan=0.0), 0.0)
    flat = valid & (w.sum(1, keepdims=True) == 0)  # all equal: uniform
    w = np.where(flat, 1.0, w)
    cum = np.cumsum(w, axis=1)
    total = cum[:, -1:]
    u = random_state.random_sample((len(w), 1)) * total
    cols = (cum <= u).sum(1)
    cols = np.minimum(cols, w.shape[1] - 1)
    cols = np.where(valid.any(1), cols, -1)
    return _pick(candidates, cols)


class _quiet:
    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)
