"""Offline text data with preference annotations: a synthetic generator and CSV/JSONL loaders."""

import json
import warnings

import numpy as np
from sklearn.utils import Bunch, check_random_state

__all__ = [
    "make_preference_text",
    "simulate_preferences",
    "CueWordScorer",
    "soft_labels_from_annotations",
    "load_text_csv",
    "load_text_jsonl",
]

_UNSET = object()  # marks an argument that was not passed
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_FILLER = ("the a an of to and is was it this that in on for with as at by from but or so "
           "very just really then than").split()


def _pseudo_words(n, rng):
    words, seen = [], set(_FILLER)
    while len(words) < n:
        w = "".join(rng.choice(list(_CONSONANTS)) + rng.choice(list(_VOWELS))
                    for _ in range(rng.randint(2, 4)))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def make_preference_text(n_samples=600, n_classes=3, *, n_annotators=5, length=(8, 16),
                         cue_fraction=0.4, n_cue_words=12, annotator_skill=(2.0, 8.0),
                         annotator_bias=0.5, random_state=None):
    """Synthetic texts with a latent intensity, disagreeing annotators and noisy majority labels.

    Each text has a true class ``c``, a confuser class ``j != c`` and a latent
    *clarity* ``t`` in [0, 1]. Its words are filler words and, with
    probability ``cue_fraction``, cue words of class ``c`` (with probability
    ``(1 + t) / 2``) or of ``j``. The intensity of the text for label ``k`` is
    ``(1 + t) / 2`` for ``c``, ``(1 - t) / 2`` for ``j`` and 0 otherwise.
    ``n_annotators`` simulated annotators, each with a skill ``s_a`` and a bias
    ``b_a``, choose ``c`` with probability ``sigmoid(s_a t + b_a)`` and
    otherwise ``j`` (or, one time in seven, another class): they disagree on
    unclear texts, and the majority vote ``y`` is a noisy label.

    Parameters
    ----------
    n_samples : int, default=600
        Number of texts.
    n_classes : int, default=3
        Number of classes (at least 2).
    n_annotators : int, default=5
        Annotators per text.
    length : tuple of int, default=(8, 16)
        Range of the number of words (inclusive).
    cue_fraction : float, default=0.4
        Share of cue words among the words of a text.
    n_cue_words : int, default=12
        Cue words per class.
    annotator_skill : tuple of float, default=(2.0, 8.0)
        Range of the annotators' skill ``s_a`` (uniform).
    annotator_bias : float, default=0.5
        Standard deviation of the annotators' bias ``b_a``.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``texts`` (ndarray of str), ``y`` (majority label, ties broken at
        random), ``y_true`` (true class), ``clarity`` (n,), ``intensity``
        (n, n_classes), ``annotations`` (n, n_annotators) labels,
        ``soft_labels`` (n, n_classes) annotator shares, ``cue_words`` (list
        of the cue words of each class) and ``filler_words``.
    """
    if not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ValueError(f"n_classes must be an int >= 2; got {n_classes!r}.")
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int; got {n_samples!r}.")
    if not isinstance(n_annotators, (int, np.integer)) or n_annotators < 1:
        raise ValueError(f"n_annotators must be a positive int; got {n_annotators!r}.")
    lo, hi = length
    if not 1 <= lo <= hi:
        raise ValueError(f"length must be (min, max) with 1 <= min <= max; got {length!r}.")
    if not 0.0 < cue_fraction <= 1.0:
        raise ValueError(f"cue_fraction must be in (0, 1]; got {cue_fraction!r}.")
    rng = check_random_state(random_state)
    words = _pseudo_words(n_classes * n_cue_words, np.random.RandomState(12345))
    cue_words = [words[k * n_cue_words:(k + 1) * n_cue_words] for k in range(n_classes)]

    c = rng.randint(n_classes, size=n_samples)
    j = (c + rng.randint(1, n_classes, size=n_samples)) % n_classes
    t = rng.uniform(0.0, 1.0, size=n_samples)
    texts = []
    for i in range(n_samples):
        n_words = rng.randint(lo, hi + 1)
        out = []
        for _ in range(n_words):
            if rng.uniform() < cue_fraction:
                k = c[i] if rng.uniform() < (1 + t[i]) / 2 else j[i]
                out.append(cue_words[k][rng.randint(n_cue_words)])
            else:
                out.append(_FILLER[rng.randint(len(_FILLER))])
        texts.append(" ".join(out))
    intensity = np.zeros((n_samples, n_classes))
    intensity[np.arange(n_samples), c] = (1 + t) / 2
    intensity[np.arange(n_samples), j] = (1 - t) / 2

    skill = rng.uniform(*annotator_skill, size=n_annotators)
    bias = rng.normal(0.0, annotator_bias, size=n_annotators)
    p_right = 1.0 / (1.0 + np.exp(-(skill[None, :] * t[:, None] + bias[None, :])))
    right = rng.uniform(size=p_right.shape) < p_right
    other = rng.randint(n_classes, size=p_right.shape)
    wrong = np.where(rng.uniform(size=p_right.shape) < 6 / 7, j[:, None], other)
    annotations = np.where(right, c[:, None], wrong)
    counts = np.zeros((n_samples, n_classes))
    for a in range(n_annotators):
        counts[np.arange(n_samples), annotations[:, a]] += 1
    soft = counts / n_annotators
    top = counts == counts.max(1, keepdims=True)
    y = (top * rng.uniform(size=top.shape)).argmax(1)  # random tie-break among the tops
    return Bunch(texts=np.array(texts, dtype=object), y=y, y_true=c, clarity=t,
                 intensity=intensity, annotations=annotations, soft_labels=soft,
                 cue_words=cue_words, filler_words=list(_FILLER))


def simulate_preferences(intensity, y, *, n_pairs_per_sample=2, noise=0.0, n_workers=1,
                         tie_margin=0.0, random_state=None):
    """Pairwise preferences ``(i, j, pref)`` on random same-label pairs from a latent intensity.

    Each of ``n_workers`` simulated workers compares ``intensity[i, y[i]]``
    with ``intensity[j, y[i]]``, each perturbed by Gaussian noise of scale
    ``noise``; a difference within ``tie_margin`` is "no preference" (0.5).
    ``pref`` is the mean answer of the workers: with ``noise=0`` and one
    worker these are oracle preferences.

    Parameters
    ----------
    intensity : array-like of shape (n_samples, n_classes)
        Latent intensity of each text for each label (columns = encoded labels).
    y : array-like of shape (n_samples,)
        Encoded labels (integers 0..n_classes-1) the pairs share.
    n_pairs_per_sample : int, default=2
        Random partners drawn for each text.
    noise : float, default=0.0
        Scale of the workers' noise.
    n_workers : int, default=1
        Workers per pair.
    tie_margin : float, default=0.0
        Perceived differences smaller than this are ties.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    preferences : ndarray of shape (n_pairs, 3)
        Rows ``(i, j, pref)`` with ``pref`` in [0, 1] (1: ``i`` is more ``y[i]``).
    """
    from ._preferences import random_same_label_pairs

    rng = check_random_state(random_state)
    intensity = np.asarray(intensity, dtype=np.float64)
    y = np.asarray(y)
    pairs = random_same_label_pairs(y, n_pairs_per_sample, rng)
    i, j = pairs[:, 0], pairs[:, 1]
    a = intensity[i, y[i]]
    b = intensity[j, y[i]]
    votes = np.zeros(len(pairs))
    for _ in range(n_workers):
        diff = (a + noise * rng.normal(size=len(a))) - (b + noise * rng.normal(size=len(b)))
        votes += np.where(diff > tie_margin, 1.0, np.where(diff < -tie_margin, 0.0, 0.5))
    return np.column_stack([i, j, votes / n_workers]).astype(np.float64)


class CueWordScorer:
    """A simulated "language model" answering which of two texts is more ``<label>``.

    It counts the share of the label's cue words in each text, adds Gaussian
    noise and answers 1 (first text), 0 (second) or 0.5 (no preference): the
    scoring-function hook of :class:`~neural.text.P2CClassifier` in tests and
    benchmarks.

    Parameters
    ----------
    cue_words : dict or list
        Cue words of each label (``cue_words[label]``), e.g. the
        ``cue_words`` of :func:`make_preference_text`.
    noise : float, default=0.0
        Scale of the noise added to each share.
    tie_margin : float, default=0.0
        Differences up to this size are "no preference".
    random_state : int or None, default=None
        Seed of the noise.

    Attributes
    ----------
    n_queries_ : int
        Number of questions answered.
    """

    def __init__(self, cue_words, noise=0.0, tie_margin=0.0, random_state=None):
        self.cue_words = cue_words
        self.noise = noise
        self.tie_margin = tie_margin
        self.random_state = random_state
        self.n_queries_ = 0
        self._rng = check_random_state(random_state)

    def _share(self, text, label):
        words = text.lower().split()
        cues = set(self.cue_words[label])
        return sum(w in cues for w in words) / max(len(words), 1)

    def __call__(self, text_a, text_b, label):
        """Answer: 1 if ``text_a`` is more ``label``, 0 if ``text_b`` is, 0.5 for no preference.

        Parameters
        ----------
        text_a, text_b : str
            The two texts.
        label : object
            Their shared label (a key of ``cue_words``).

        Returns
        -------
        answer : float
            1.0, 0.0 or 0.5.
        """
        self.n_queries_ += 1
        diff = self._share(text_a, label) - self._share(text_b, label)
        diff += self.noise * self._rng.normal() * np.sqrt(2)
        if diff > self.tie_margin:
            return 1.0
        if diff < -self.tie_margin:
            return 0.0
        return 0.5


def soft_labels_from_annotations(annotations, classes=None):
    """Share of annotators choosing each class, per text.

    Parameters
    ----------
    annotations : sequence of sequences
        The labels the annotators gave each text (lists may differ in length;
        None and "" are missing annotations).
    classes : array-like or None, default=None
        Column order (default: the sorted distinct labels).

    Returns
    -------
    soft_labels : ndarray of shape (n_samples, n_classes)
        Rows sum to one (all-zero rows for texts without annotations).
    classes : ndarray of shape (n_classes,)
        The column labels.
    """
    cleaned = [[a for a in row if a is not None and a != ""] for row in annotations]
    if classes is None:
        classes = np.array(sorted({a for row in cleaned for a in row}, key=str))
    classes = np.asarray(classes)
    index = {c.item() if hasattr(c, "item") else c: k for k, c in enumerate(classes)}
    soft = np.zeros((len(cleaned), len(classes)))
    for r, row in enumerate(cleaned):
        for a in row:
            if a not in index:
                raise ValueError(f"annotation {a!r} is not one of the classes {classes.tolist()}.")
            soft[r, index[a]] += 1
        if row:
            soft[r] /= len(row)
    return soft, classes


def _majority(soft, classes):
    return classes[soft.argmax(1)]


def _finish(texts, labels, annotations, path):
    if not texts:
        raise ValueError(f"{path!r} holds no records.")
    texts = np.array(texts, dtype=object)
    soft = classes = None
    if annotations is not None:
        pool = list(labels or []) if labels else []
        soft, classes = soft_labels_from_annotations(
            annotations, sorted({a for row in annotations for a in row if a not in (None, "")}
                                | set(pool), key=str)
        )
        if labels is None:
            empty = soft.sum(1) == 0
            if empty.any():
                raise ValueError(
                    f"{int(empty.sum())} records of {path!r} have neither a label nor annotations."
                )
            labels = _majority(soft, classes)
    if labels is None:
        raise ValueError(f"{path!r}: give a label column/key or annotations.")
    y = np.asarray(labels)
    return Bunch(texts=texts, y=y, soft_labels=soft, classes=classes)


def load_text_csv(path, *, text_column="text", target_column="label", annotation_columns=None,
                  delimiter=",", label_column=_UNSET):
    """Load texts, labels and optional per-annotator labels from a CSV file.

    The file is read by :func:`sdlearn.datasets.load_text_csv` (the project's one CSV reader);
    this adds the soft labels of the annotations.

    Parameters
    ----------
    path : str or path-like
        CSV file with a header row.
    text_column : str, default="text"
        Column with the texts.
    target_column : str or None, default="label"
        Column with the labels; None (or a missing column) uses the majority
        of the annotations.
    annotation_columns : list of str or None, default=None
        Columns holding one annotator's label each (empty cells are missing).
    delimiter : str, default=","
        Field separator.
    label_column : str or None
        Deprecated name of ``target_column``.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``texts``, ``y`` (labels as strings), ``soft_labels`` (n, n_classes)
        or None, and ``classes`` (the soft-label columns) or None.

    Raises
    ------
    ValueError
        If a named column is missing or the file has no records.
    """
    if label_column is not _UNSET:
        warnings.warn("label_column is deprecated: use target_column (the name of sdlearn.datasets.load_text_csv).",
                      FutureWarning, stacklevel=2)
        target_column = label_column
    from sdlearn.datasets import load_text_csv as read_csv

    data = read_csv(path, text_column=text_column, target_column=target_column, aux_columns=[],
                    annotation_columns=annotation_columns, delimiter=delimiter)
    labels = None if data.target is None else [str(v) for v in data.target]
    return _finish(data.texts, labels, data.annotations, path)


def load_text_jsonl(path, *, text_key="text", label_key="label", annotations_key=None):
    """Load texts, labels and optional annotator labels from a JSON-lines file.

    Parameters
    ----------
    path : str or path-like
        One JSON object per line.
    text_key : str, default="text"
        Key of the text.
    label_key : str or None, default="label"
        Key of the label; None (or absent) uses the majority of the annotations.
    annotations_key : str or None, default=None
        Key of a list with the labels the annotators gave.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``texts``, ``y``, ``soft_labels`` (n, n_classes) or None, ``classes`` or None.

    Raises
    ------
    ValueError
        For a line that is not a JSON object or lacks the text.
    """
    texts, labels, annotations = [], [], []
    has_label = label_key is not None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path!r} line {lineno} is not JSON: {exc}") from None
            if not isinstance(rec, dict) or text_key not in rec:
                raise ValueError(f"{path!r} line {lineno} has no {text_key!r} field.")
            texts.append(str(rec[text_key]))
            if has_label:
                if label_key in rec:
                    labels.append(rec[label_key])
                elif annotations_key is None:
                    raise ValueError(f"{path!r} line {lineno} has no {label_key!r} field.")
                else:
                    has_label = False
            if annotations_key is not None:
                ann = rec.get(annotations_key, [])
                if not isinstance(ann, list):
                    raise ValueError(f"{path!r} line {lineno}: {annotations_key!r} must be a list.")
                annotations.append(ann)
    return _finish(texts, labels if has_label else None,
                   annotations if annotations_key is not None else None, path)

