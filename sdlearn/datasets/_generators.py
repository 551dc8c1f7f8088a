"""Synthetic and semi-synthetic data for SDL, with the true parameters: the planted model, the
paper's digits construction and a corpus for supervised topic modelling."""

import numpy as np
from sklearn.utils import Bunch, check_random_state


def make_sdl_classification(
    n_samples=500,
    n_features=50,
    n_components=5,
    *,
    n_classes=2,
    n_aux=0,
    mode="filter",
    noise=1.0,
    class_sep=1.0,
    separate_dictionary=False,
    nonnegative=False,
    random_state=None,
):
    """Draw data from the planted SDL model and return it with the true parameters.

    Features are ``x_i = W* h_i + noise * eps_i`` (``eps_i`` standard Gaussian), so the
    maximum-likelihood weight of the reconstruction term is ``xi = 1 / (2 noise^2)``.
    Labels follow the multinomial logistic model with the first class as baseline and scores

    * ``mode='feature'``: ``s_i = beta*^T h_i + gamma*^T x'_i + b*``;
    * ``mode='filter'``: ``s_i = beta*^T z_i + gamma*^T x'_i + b*`` with ``z_i = W_Y^T x_i``,
      the filter of the features by the discriminative dictionary ``W_Y`` (unit-norm atoms).

    ``W_Y = W*`` (normalised) unless ``separate_dictionary=True``, in which case ``W_Y`` is
    drawn independently: the discriminative directions differ from the reconstructive ones
    (the regime where supervised dictionary learning beats the two-step pipeline).

    Parameters
    ----------
    n_samples : int, default=500
        Number of samples ``n``.
    n_features : int, default=50
        Number of reconstructed features ``p``.
    n_components : int, default=5
        Rank ``r`` of the planted dictionary.
    n_classes : int, default=2
        Number of classes ``K``.
    n_aux : int, default=0
        Number of auxiliary covariates (standard Gaussian) entering the labels.
    mode : {'filter', 'feature'}, default='filter'
        How labels are generated (see above).
    noise : float, default=1.0
        Standard deviation of the feature noise.
    class_sep : float, default=1.0
        Standard deviation of the entries of ``beta*`` and ``gamma*``: larger is easier.
    separate_dictionary : bool, default=False
        Generate labels from a discriminative dictionary independent of ``W*`` (filter mode).
    nonnegative : bool, default=False
        Nonnegative atoms and codes (uniform), features clipped at 0: count-like data.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    data : Bunch
        ``data`` (n, p) features; ``target`` (n,) labels in ``0..K-1``; ``aux`` (n, n_aux)
        covariates or ``None``; ``dictionary`` (r, p) true atoms (rows, scaled so entries
        have unit variance); ``codes`` (n, r); ``coef`` (K-1, r) true ``beta*`` transposed;
        ``aux_coef`` (K-1, n_aux); ``intercept`` (K-1,); ``filter`` (K-1, p) the effective
        linear classifier of the features (filter mode); ``discriminative_dictionary`` (r, p);
        ``proba`` (n, K) true class probabilities (their argmax is the Bayes rule);
        ``xi`` the matching reconstruction weight; ``mode``.

    Examples
    --------
    >>> from sdlearn.datasets import make_sdl_classification
    >>> d = make_sdl_classification(n_samples=100, n_features=20, n_components=3, random_state=0)
    >>> d.data.shape, d.target.shape, d.dictionary.shape
    ((100, 20), (100,), (3, 20))
    """
    if mode not in ("filter", "feature"):
        raise ValueError(f"mode must be 'filter' or 'feature', got {mode!r}.")
    if not 1 <= n_components <= min(n_samples, n_features):
        raise ValueError(f"n_components must be in [1, min(n_samples, n_features)], got {n_components}.")
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}.")
    rng = check_random_state(random_state)
    n, p, r, d = n_samples, n_features, n_components, n_classes - 1

    if nonnegative:
        atoms = rng.uniform(0.0, 1.0, size=(p, r))
        atoms *= np.sqrt(p) / np.linalg.norm(atoms, axis=0)
        codes = rng.uniform(0.0, 1.0, size=(n, r))
        X = np.clip(codes @ atoms.T + noise * rng.standard_normal((n, p)), 0.0, None)
    else:
        atoms = np.linalg.qr(rng.standard_normal((p, r)))[0] * np.sqrt(p)
        codes = rng.standard_normal((n, r))
        X = codes @ atoms.T + noise * rng.standard_normal((n, p))

    if separate_dictionary:
        other = rng.uniform(0.0, 1.0, size=(p, r)) if nonnegative else rng.standard_normal((p, r))
        discriminative = other / np.linalg.norm(other, axis=0)
    else:
        discriminative = atoms / np.linalg.norm(atoms, axis=0)
    beta = class_sep * rng.standard_normal((r, d))
    X_aux = rng.standard_normal((n, n_aux)) if n_aux else None
    gamma = class_sep * rng.standard_normal((n_aux, d))
    if mode == "filter":
        # z = W_Y^T x / sqrt(p) has the scale of the codes when W_Y = W*
        features = X @ discriminative / np.sqrt(p)
        effective_filter = (discriminative @ beta / np.sqrt(p)).T
    else:
        features = codes
        effective_filter = None
    scores = features @ beta
    if X_aux is not None:
        scores = scores + X_aux @ gamma
    intercept = -scores.mean(axis=0)  # roughly balanced classes
    scores = scores + intercept
    full = np.hstack([np.zeros((n, 1)), scores])
    proba = np.exp(full - full.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    target = (rng.uniform(size=(n, 1)) > np.cumsum(proba, axis=1)).sum(axis=1)
    return Bunch(
        data=X, target=target, aux=X_aux, dictionary=atoms.T, codes=codes, coef=beta.T,
        aux_coef=gamma.T, intercept=intercept, filter=effective_filter,
        discriminative_dictionary=discriminative.T, proba=proba,
        xi=1.0 / (2.0 * noise**2) if noise > 0 else np.inf, mode=mode,
    )


# ----------------------------------------------------------------------------------------------
# semi-synthetic data of the paper's experiments (all offline)
# ----------------------------------------------------------------------------------------------
def _sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def _zoom_images(images, zoom):
    """Bilinear upsampling of a stack of images by an integer factor, clipped to [0, 1]."""
    if zoom == 1:
        return images
    from scipy.ndimage import zoom as nd_zoom

    return np.clip(nd_zoom(images, (1, zoom, zoom), order=1), 0.0, 1.0)


def make_digit_dictionary_classification(
    n_samples=500,
    *,
    n_atoms_per_digit=10,
    feature_digits=(2, 5),
    label_digits=(4, 7),
    noise=0.5,
    zoom=3,
    class_sep=1.0,
    random_state=None,
):
    """Semi-synthetic data whose discriminative dictionary differs from the reconstructive one.

    The construction of the paper's MNIST experiment, with scikit-learn's bundled 8 x 8 digits
    (:func:`sklearn.datasets.load_digits`, pixels scaled to [0, 1]) as the atoms, so it runs
    offline. Features are mixtures of images of the ``feature_digits`` (the reconstructive
    dictionary ``W``, ``n_atoms_per_digit`` random images of each digit) plus Gaussian noise:
    ``x_i = W^T h_i + noise * eps_i`` with codes ``h_i ~ U[0, 1]``. Labels are drawn from a
    logistic model that reads the features through a *different* dictionary ``W_Y`` made of
    images of the ``label_digits``::

        P(y_i = 1) = sigmoid(class_sep * (beta^T W_Y x_i - mean)),

    with ``beta = +1`` on the atoms of the first label digit and ``-1`` on those of the second.
    The directions that explain the features are not those that predict the label: a
    dictionary learnt for reconstruction alone (PCA, NMF) followed by a classifier misses them,
    while supervised dictionary learning can trade a little reconstruction for them.

    Parameters
    ----------
    n_samples : int, default=500
        Number of samples.
    n_atoms_per_digit : int, default=10
        Images per digit in each dictionary (the paper's ``r0``).
    feature_digits : tuple of int, default=(2, 5)
        Digits whose images form the reconstructive dictionary.
    label_digits : tuple of two int, default=(4, 7)
        Digits whose images form the discriminative dictionary (first: ``beta = +1``).
    noise : float, default=0.5
        Standard deviation of the Gaussian noise on every pixel.
    zoom : int, default=3
        Integer upsampling factor of the 8 x 8 images (bilinear): ``zoom=3`` gives 24 x 24
        images, 576 features, close to the 784 pixels of the paper's MNIST; ``zoom=1`` keeps
        the 64 original pixels.
    class_sep : float, default=1.0
        Scale of the logits: larger is easier.
    random_state : int, RandomState instance or None, default=None
        Seed of the atom choice, the codes, the noise and the labels.

    Returns
    -------
    data : Bunch
        ``data`` (n, p) features; ``target`` (n,) labels in {0, 1}; ``proba`` (n,) true
        probability of class 1; ``dictionary`` (r, p) reconstructive atoms (rows);
        ``discriminative_dictionary`` (r_Y, p) label atoms; ``codes`` (n, r); ``coef`` (r_Y,)
        the ``beta`` above; ``filter`` (p,) the effective linear classifier
        ``class_sep * W_Y^T beta``; ``intercept``; ``image_shape`` (the shape of one image);
        ``xi`` the maximum-likelihood reconstruction weight ``1 / (2 noise^2)``.

    See Also
    --------
    make_sdl_classification : Fully synthetic data from the SDL model.

    Examples
    --------
    >>> from sdlearn.datasets import make_digit_dictionary_classification
    >>> d = make_digit_dictionary_classification(n_samples=50, zoom=1, random_state=0)
    >>> d.data.shape, d.dictionary.shape, d.discriminative_dictionary.shape, d.image_shape
    ((50, 64), (20, 64), (20, 64), (8, 8))
    """
    from sklearn.datasets import load_digits

    if len(label_digits) != 2:
        raise ValueError(f"label_digits must hold two digits, got {label_digits!r}.")
    if int(zoom) != zoom or zoom < 1:
        raise ValueError(f"zoom must be a positive integer, got {zoom!r}.")
    if n_atoms_per_digit < 1:
        raise ValueError(f"n_atoms_per_digit must be at least 1, got {n_atoms_per_digit}.")
    rng = check_random_state(random_state)
    digits = load_digits()
    images = _zoom_images(digits.images / 16.0, int(zoom))
    image_shape = images.shape[1:]
    flat = images.reshape(len(images), -1)

    def atoms(which):
        out = []
        for digit in which:
            pool = np.flatnonzero(digits.target == digit)
            if len(pool) < n_atoms_per_digit:
                raise ValueError(f"digit {digit!r} has only {len(pool)} images; lower n_atoms_per_digit.")
            out.append(flat[rng.choice(pool, n_atoms_per_digit, replace=False)])
        return np.vstack(out)

    W = atoms(feature_digits)
    W_Y = atoms(label_digits)
    codes = rng.uniform(0.0, 1.0, size=(n_samples, W.shape[0]))
    X = codes @ W + noise * rng.standard_normal((n_samples, W.shape[1]))
    beta = np.r_[np.ones(n_atoms_per_digit), -np.ones(n_atoms_per_digit)]
    effective = class_sep * (W_Y.T @ beta)
    logits = X @ effective
    intercept = -float(logits.mean())
    proba = _sigmoid(logits + intercept)
    target = (rng.uniform(size=n_samples) < proba).astype(int)
    return Bunch(
        data=X, target=target, proba=proba, dictionary=W, discriminative_dictionary=W_Y, codes=codes,
        coef=beta, filter=effective, intercept=intercept, image_shape=tuple(image_shape),
        xi=1.0 / (2.0 * noise**2) if noise > 0 else np.inf,
    )


_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def _pseudo_words(n, rng):
    """``n`` distinct pronounceable pseudo-words (two or three consonant-vowel syllables)."""
    syllables = len(_CONSONANTS) * len(_VOWELS)
    if n > (syllables**2 + syllables**3) // 4:
        raise ValueError(f"n_words={n} is too large: at most {(syllables**2 + syllables**3) // 4} pseudo-words.")
    words, seen = [], set()
    for _ in range(100 * n):  # drawing distinct words among 4x as many takes few draws
        if len(words) == n:
            break
        length = rng.integers(2, 4)
        word = "".join(rng.choice(list(_CONSONANTS)) + rng.choice(list(_VOWELS)) for _ in range(length))
        if word not in seen:
            seen.add(word)
            words.append(word)
    if len(words) < n:  # pragma: no cover - astronomically unlikely
        raise RuntimeError(f"could not draw {n} distinct pseudo-words.")
    return words


def make_topic_corpus(
    n_documents=1000,
    *,
    n_topics=6,
    n_words=400,
    document_length=60,
    rare_fraction=0.05,
    topic_signal=4.0,
    n_aux=3,
    aux_signal=1.0,
    topic_concentration=0.05,
    document_concentration=0.3,
    random_state=None,
):
    """A synthetic corpus for supervised topic modelling with a rare class and metadata.

    Mimics imbalanced document classification with covariates (e.g. fraudulent job postings:
    few positives, meta-data such as "has a company logo"). Each topic is a sparse word
    distribution ``phi_k ~ Dirichlet(topic_concentration)``; each document mixes topics with
    weights ``theta_i ~ Dirichlet(document_concentration)`` and has ``Poisson(document_length)``
    words drawn from ``theta_i^T phi``. Topic 0 is the *signal topic*. The label is drawn from::

        P(y_i = 1) = sigmoid(topic_signal * z_i + aux_signal * gamma^T a_i + b),

    where ``z_i`` is the standardised weight of the signal topic, ``a_i`` the covariates
    (binary and count-valued meta-data, standardised in the model) and ``b`` is set so that
    about ``rare_fraction`` of the documents are positive.

    Parameters
    ----------
    n_documents : int, default=1000
        Number of documents.
    n_topics : int, default=6
        Number of topics.
    n_words : int, default=400
        Vocabulary size (pronounceable pseudo-words).
    document_length : float, default=60
        Mean number of words per document.
    rare_fraction : float, default=0.05
        Target fraction of positive (rare class) documents, in (0, 0.5].
    topic_signal : float, default=4.0
        Logit weight of the signal topic.
    n_aux : int, default=3
        Number of covariates: alternately binary (Bernoulli) and count-valued (Poisson).
    aux_signal : float, default=1.0
        Scale of the covariates' logit weights ``gamma`` (drawn standard Gaussian).
    topic_concentration : float, default=0.05
        Dirichlet parameter of the topics' word distributions (small: few words per topic).
    document_concentration : float, default=0.3
        Dirichlet parameter of the documents' topic weights (small: few topics per document).
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    data : Bunch
        ``texts`` list of n strings; ``data`` (n, n_words) word counts (ndarray) in the order
        of ``vocabulary``; ``target`` (n,) labels in {0, 1}; ``aux`` (n, n_aux) covariates or
        ``None``; ``aux_names``; ``aux_coef`` (n_aux,) the true ``gamma``; ``vocabulary``
        (n_words,) array of words; ``topics`` (n_topics, n_words) word distributions;
        ``doc_topics`` (n, n_topics); ``signal_topic`` (0); ``proba`` (n,) true probability
        of class 1.

    See Also
    --------
    load_text_csv : The same fields from a CSV file of texts, labels and covariates.

    Examples
    --------
    >>> from sdlearn.datasets import make_topic_corpus
    >>> c = make_topic_corpus(n_documents=200, n_words=50, random_state=0)
    >>> len(c.texts), c.data.shape, c.aux.shape, c.topics.shape
    (200, (200, 50), (200, 3), (6, 50))
    >>> bool(0.0 < c.target.mean() < 0.2)
    True
    """
    if not 0.0 < rare_fraction <= 0.5:
        raise ValueError(f"rare_fraction must be in (0, 0.5], got {rare_fraction!r}.")
    if n_topics < 2 or n_words < n_topics:
        raise ValueError("need n_topics >= 2 and n_words >= n_topics.")
    rng = check_random_state(random_state)
    gen = np.random.default_rng(rng.randint(2**31 - 1))
    vocabulary = np.asarray(_pseudo_words(n_words, gen))
    topics = gen.dirichlet(np.full(n_words, topic_concentration), size=n_topics)
    doc_topics = gen.dirichlet(np.full(n_topics, document_concentration), size=n_documents)
    lengths = np.maximum(gen.poisson(document_length, size=n_documents), 1)
    word_proba = doc_topics @ topics
    word_proba /= word_proba.sum(axis=1, keepdims=True)
    counts = np.vstack([gen.multinomial(length, p) for length, p in zip(lengths, word_proba)]).astype(float)

    signal = doc_topics[:, 0]
    z = (signal - signal.mean()) / max(signal.std(), 1e-12)
    logits = topic_signal * z
    aux, aux_names, gamma = None, [], np.zeros(n_aux)
    if n_aux:
        columns = []
        for j in range(n_aux):
            if j % 2 == 0:
                columns.append(gen.binomial(1, 0.3, size=n_documents).astype(float))
                aux_names.append(f"flag_{j}")
            else:
                columns.append(gen.poisson(2.0, size=n_documents).astype(float))
                aux_names.append(f"count_{j}")
        aux = np.column_stack(columns)
        gamma = aux_signal * gen.standard_normal(n_aux)
        standardised = (aux - aux.mean(axis=0)) / np.maximum(aux.std(axis=0), 1e-12)
        logits = logits + standardised @ gamma
    # intercept by bisection: mean probability = rare_fraction
    lo, hi = -50.0, 50.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if _sigmoid(logits + mid).mean() > rare_fraction:
            hi = mid
        else:
            lo = mid
    proba = _sigmoid(logits + 0.5 * (lo + hi))
    target = (gen.uniform(size=n_documents) < proba).astype(int)

    texts = []
    for row in counts.astype(int):
        words = np.repeat(vocabulary, row)
        gen.shuffle(words)
        texts.append(" ".join(words))
    return Bunch(
        texts=texts, data=counts, target=target, aux=aux, aux_names=aux_names, aux_coef=gamma,
        vocabulary=vocabulary, topics=topics, doc_topics=doc_topics, signal_topic=0, proba=proba,
    )
