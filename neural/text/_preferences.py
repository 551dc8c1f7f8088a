"""Preference sources of P2C: annotator soft labels, explicit pairs, a scoring function."""

import numbers

import numpy as np

__all__ = [
    "preferences_from_soft_labels",
    "query_preferences",
    "check_preference_pairs",
    "check_soft_labels",
]


def check_soft_labels(soft_labels, n_samples, n_classes):
    """Validate annotator soft labels: non-negative rows, normalised to sum to one.

    Parameters
    ----------
    soft_labels : array-like of shape (n_samples, n_classes)
        Per-example share (or count) of annotators choosing each class, columns
        in the order of ``classes_``.
    n_samples : int
        Expected number of rows.
    n_classes : int
        Expected number of columns.

    Returns
    -------
    soft_labels : ndarray of shape (n_samples, n_classes)
        Rows scaled to sum to one (float64).

    Raises
    ------
    ValueError
        For a wrong shape, NaN/inf, negative values or an all-zero row.
    """
    try:
        s = np.array(soft_labels, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"soft_labels must be a numeric array; {exc}") from None
    if s.shape != (n_samples, n_classes):
        raise ValueError(
            f"soft_labels must have shape (n_samples, n_classes) = ({n_samples}, {n_classes}), "
            f"one column per class of classes_; got shape {s.shape}."
        )
    if not np.isfinite(s).all():
        raise ValueError("soft_labels contains NaN or inf.")
    if (s < 0).any():
        raise ValueError("soft_labels must be non-negative (shares or counts of annotators).")
    total = s.sum(1, keepdims=True)
    if (total <= 0).any():
        raise ValueError(
            f"soft_labels has {int((total <= 0).sum())} all-zero rows; every text needs at "
            "least one annotation."
        )
    return s / total


def preferences_from_soft_labels(soft_labels, y, pairs, tie_tol=0.0):
    """Pairwise preferences extracted from annotator soft labels.

    For a pair ``(i, j)`` sharing label ``y[i]``: 1 if annotators chose that
    label more often for ``i`` than for ``j`` (by more than ``tie_tol``), 0 if
    less often, 0.5 (a tie) otherwise.

    Parameters
    ----------
    soft_labels : array-like of shape (n_samples, n_classes)
        Annotator soft labels (columns indexed by the encoded labels).
    y : array-like of shape (n_samples,)
        Encoded labels (integers 0..n_classes-1).
    pairs : array-like of shape (n_pairs, 2)
        Index pairs ``(i, j)``.
    tie_tol : float, default=0.0
        Differences up to this size count as ties.

    Returns
    -------
    pref : ndarray of shape (n_pairs,)
        Probability that the first text is preferred: 0, 0.5 or 1.
    """
    s = np.asarray(soft_labels, dtype=np.float64)
    y = np.asarray(y)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    i, j = pairs[:, 0], pairs[:, 1]
    diff = s[i, y[i]] - s[j, y[i]]
    return np.where(diff > tie_tol, 1.0, np.where(diff < -tie_tol, 0.0, 0.5))


def _check_index(a, n, name):
    if not np.all(np.equal(np.mod(a, 1), 0)):
        raise ValueError(f"{name} must hold integer sample indices.")
    a = a.astype(np.int64)
    if len(a) and (a.min() < 0 or a.max() >= n):
        raise ValueError(
            f"{name} holds sample indices outside [0, {n}); indices refer to the rows of the "
            "texts passed to fit."
        )
    return a


def check_preference_pairs(preferences, y):
    """Validate explicit preference pairs ``(i, j, pref)``.

    Parameters
    ----------
    preferences : array-like of shape (n_pairs, 3)
        Rows ``(i, j, pref)``: indices into the training texts and the
        probability that text ``i`` is preferred over text ``j`` for their
        shared label (1, 0, 0.5 for a tie, or a share of workers).
    y : ndarray of shape (n_samples,)
        Labels of the training texts.

    Returns
    -------
    i, j : ndarray of shape (n_pairs,)
        Indices.
    pref : ndarray of shape (n_pairs,)
        Preferences in [0, 1].

    Raises
    ------
    ValueError
        For a wrong shape, NaN, indices out of range, a text paired with
        itself, pairs of different labels or a preference outside [0, 1].
    """
    try:
        p = np.array(preferences, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            "preferences must be an array of rows (i, j, pref), a callable "
            "scorer(text_a, text_b, label), or None."
        ) from None
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(
            f"preferences must have shape (n_pairs, 3), rows (i, j, pref); got shape {p.shape}."
        )
    if not np.isfinite(p).all():
        raise ValueError("preferences contains NaN or inf.")
    n = len(y)
    i = _check_index(p[:, 0], n, "preferences[:, 0]")
    j = _check_index(p[:, 1], n, "preferences[:, 1]")
    pref = p[:, 2]
    if ((pref < 0) | (pref > 1)).any():
        raise ValueError(
            "preferences[:, 2] must be in [0, 1]: 1 if text i is preferred, 0 if text j, "
            "0.5 for no preference."
        )
    if (i == j).any():
        raise ValueError(f"preferences pairs {int((i == j).sum())} texts with themselves.")
    y = np.asarray(y)
    mismatch = y[i] != y[j]
    if mismatch.any():
        raise ValueError(
            f"{int(mismatch.sum())} preference pairs join texts of different labels; P2C "
            "compares two texts of the same label ('which one is more <label>')."
        )
    return i, j, pref


def query_preferences(scorer, texts, labels, pairs):
    """Ask a scoring function which text of each pair is more ``<label>``.

    This is the hook where a language model answers "which of these two is
    more <label>?".

    Parameters
    ----------
    scorer : callable
        ``scorer(text_a, text_b, label) -> float`` in [0, 1]: 1 if ``text_a``
        is more ``label``, 0 if ``text_b`` is, 0.5 for no preference (any
        probability in between is accepted); None skips the pair.
    texts : sequence of str
        Texts.
    labels : sequence
        Label of each text (the original labels, as passed to ``fit``).
    pairs : array-like of shape (n_pairs, 2)
        Index pairs of texts with the same label.

    Returns
    -------
    preferences : ndarray of shape (n_answered, 3)
        Rows ``(i, j, pref)`` of the pairs the scorer answered.

    Raises
    ------
    ValueError
        If the scorer returns something that is not a number in [0, 1] or None.
    """
    rows = []
    for i, j in np.asarray(pairs, dtype=np.int64).reshape(-1, 2):
        answer = scorer(texts[i], texts[j], labels[i])
        if answer is None:
            continue
        if isinstance(answer, (bool, np.bool_)) or not isinstance(answer, numbers.Real) \
                or not 0.0 <= float(answer) <= 1.0:
            raise ValueError(
                "the preference scorer must return a number in [0, 1] (1: the first text is "
                f"more <label>, 0: the second, 0.5: no preference) or None; got {answer!r}."
            )
        rows.append((i, j, float(answer)))
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def random_same_label_pairs(y, n_per_sample, random_state):
    """``n_per_sample`` random same-label partners per text, as index pairs."""
    y = np.asarray(y)
    pairs = []
    for label in np.unique(y):
        group = np.flatnonzero(y == label)
        g = len(group)
        if g < 2:
            continue
        k = min(n_per_sample, g - 1)
        for pos, i in enumerate(group):
            others = random_state.choice(g - 1, size=k, replace=False)
            others = others + (others >= pos)
            pairs.extend((i, group[o]) for o in others)
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


class SoftLabelSource:
    """Every same-label pair, preferences read from annotator soft labels."""

    kind = "soft_labels"

    def __init__(self, soft_labels, y, tie_tol):
        self.soft = soft_labels
        self.y = y
        self.tie_tol = tie_tol

    def candidates(self, allowed, n_candidates, rng):
        n = len(self.y)
        cand = np.full((n, n_candidates), -1, dtype=np.int64)
        for label in np.unique(self.y[allowed]):
            group = np.flatnonzero((self.y == label) & allowed)
            g = len(group)
            if g < 2:
                continue
            if g - 1 <= n_candidates:
                pos = np.arange(g)
                idx = (pos[:, None] + 1 + np.arange(g - 1)[None, :]) % g  # every other member
                cand[group, : g - 1] = group[idx]
            else:
                k = rng.randint(0, g - 1, size=(g, n_candidates))
                k = k + (k >= np.arange(g)[:, None])
                cand[group] = group[k]
        pref = np.full(cand.shape, 0.5)
        valid = cand >= 0
        rows = np.broadcast_to(np.arange(n)[:, None], cand.shape)
        pref[valid] = preferences_from_soft_labels(
            self.soft, self.y, np.stack([rows[valid], cand[valid]], 1), self.tie_tol
        )
        return cand, pref


class PairSource:
    """A fixed set of preference pairs (explicit, or answered by a scorer)."""

    def __init__(self, i, j, pref, n, kind):
        self.kind = kind
        self.n_pairs = len(i)
        src = np.concatenate([i, j])
        dst = np.concatenate([j, i])
        p = np.concatenate([pref, 1.0 - pref])
        order = np.argsort(src, kind="stable")
        self.src, self.dst, self.p = src[order], dst[order], p[order]
        self.starts = np.searchsorted(self.src, np.arange(n + 1))

    def candidates(self, allowed, n_candidates, rng):
        n = len(self.starts) - 1
        keep = allowed[self.src] & allowed[self.dst]
        degree = np.zeros(n, dtype=np.int64)
        np.add.at(degree, self.src[keep], 1)
        width = int(min(max(degree.max(initial=0), 1), n_candidates))
        cand = np.full((n, width), -1, dtype=np.int64)
        pref = np.full((n, width), 0.5)
        for i in np.flatnonzero(degree):
            a, b = self.starts[i], self.starts[i + 1]
            js, ps = self.dst[a:b], self.p[a:b]
            ok = keep[a:b]
            js, ps = js[ok], ps[ok]
            if len(js) > width:
                pick = rng.choice(len(js), size=width, replace=False)
                js, ps = js[pick], ps[pick]
            cand[i, : len(js)] = js
            pref[i, : len(js)] = ps
        return cand, pref
