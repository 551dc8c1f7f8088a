"""P2CClassifier: text classification with auxiliary pairwise preference learning."""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_consistent_length, check_is_fitted
from torch.nn import functional as F

from .._data import check_map_dataset, is_dataset
from .._estimator import BaseTorchClassifier, store_params
from .._utils import to_numpy
from .._validation import Finite
from ._encoders import BagEncoder, SentenceEncoder, TransformerTextEncoder
from ._losses import consistency_loss, diversity_loss, preference_loss, soft_label_margin_loss
from ._model import P2CNet
from ._pairs import LazyTextInputs, PairDataset, TextInputs
from ._preferences import (
    PairSource,
    SoftLabelSource,
    check_preference_pairs,
    check_soft_labels,
    query_preferences,
    random_same_label_pairs,
)
from ._sampling import disagreement_partners, inconsistency_partners, random_partners
from ._tokenize import Tokenizer

__all__ = ["P2CClassifier"]

ENCODERS = ("bag", "transformer", "pretrained")
SAMPLINGS = ("random", "disagreement", "inconsistency")


def check_texts(X, name="X"):
    """Validate raw texts: a list, tuple, 1-D array (or one column) or Series of str.

    Parameters
    ----------
    X : object
        The input to check.
    name : str, default="X"
        Name used in error messages.

    Returns
    -------
    texts : list of str
        The texts.

    Raises
    ------
    ValueError
        For a single string, numeric arrays, non-str elements or no texts.
    """
    X = to_numpy(X)
    if isinstance(X, str):
        raise ValueError(
            f"{name} must be a sequence of texts, not a single string; wrap it in a list."
        )
    if hasattr(X, "to_numpy") and not isinstance(X, np.ndarray):  # pandas Series / Index
        X = X.to_numpy()
    if isinstance(X, np.ndarray):
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1:
            raise ValueError(
                f"{name} must be raw texts (a list or 1-D array of str); got an array of shape "
                f"{X.shape}. P2CClassifier tokenizes texts itself: pass the texts, not "
                "features."
            )
        X = X.tolist()
    elif not isinstance(X, (list, tuple)):
        raise ValueError(
            f"{name} must be raw texts (a list, tuple, 1-D array or Series of str); got "
            f"{type(X).__name__}."
        )
    bad = [k for k, t in enumerate(X) if not isinstance(t, str)]
    if bad:
        raise ValueError(
            f"{name} must hold texts (str); element {bad[0]} is {X[bad[0]]!r} "
            f"({type(X[bad[0]]).__name__}), {len(bad)} non-str elements in all. P2CClassifier "
            "takes raw texts, not numeric features."
        )
    if len(X) == 0:
        raise ValueError(f"{name} holds 0 texts; at least one is required.")
    return list(X)


class P2CClassifier(BaseTorchClassifier):
    """Text classifier trained with auxiliary pairwise preference learning (P2C).

    A sentence encoder feeds a classification head and ``n_pref_heads``
    label-conditioned preference heads :math:`r_m(x, y) \\in [-1, 1]`. Each
    training text (the anchor) is paired with a text of the same label; the
    preference heads learn which of the two is "more <label>" with the
    Bradley-Terry loss (ties as 0.5). The total loss is

    .. math::

        \\lambda_{cls} L_{cls} + \\lambda_{pref} L_{pref} - \\lambda_{div} L_{div}
        + \\lambda_{cons} L_{cons}

    where :math:`L_{div}` keeps the heads diverse and :math:`L_{cons}` asks the
    classifier to be more confident about the preferred text of each pair.
    Prediction uses the encoder and the classification head only: with all
    three auxiliary weights at zero this is the plain classifier.

    Read more in the :doc:`user guide </neural/p2c>`.

    Parameters
    ----------
    encoder : {"bag", "transformer", "pretrained"}, default="bag"
        ``"bag"``: mean of word embeddings + a tanh layer; ``"transformer"``:
        a tiny transformer encoder; both are trained here from a word
        vocabulary of the training texts. ``"pretrained"``: frozen embeddings
        of ``pretrained_model`` (only the heads are trained).
    embedding_dim : int, default=32
        Width of the trained encoders.
    n_layers : int, default=1
        Transformer layers.
    n_heads : int, default=2
        Attention heads of the transformer (must divide ``embedding_dim``).
    max_length : int, default=64
        Texts are cut to this many tokens.
    max_vocab : int, default=20000
        Largest vocabulary.
    min_freq : int, default=1
        Words seen fewer times in the training texts are unknown.
    pretrained_model : str, object or None, default=None
        With ``encoder="pretrained"``: the path (or local cache name) of a
        sentence-transformers model installed on this machine, e.g. a saved
        ``all-MiniLM-L6-v2``, or any object with ``encode(texts) -> array``.
        Nothing is ever downloaded.
    n_pref_heads : int, default=3
        Number of preference heads (0 disables the preference and diversity
        terms).
    pref_hidden : int, default=32
        Hidden width of the preference heads.
    dropout : float, default=0.1
        Dropout before the classification head (and inside the transformer).
    lambda_cls : float, default=1.0
        Weight of the classification loss.
    lambda_pref : float, default=1.0
        Weight of the Bradley-Terry preference loss.
    lambda_div : float, default=0.1
        Weight of the diversity term (subtracted).
    lambda_cons : float, default=1.0
        Weight of the consistency term between the classifier and the
        preferences (see ``consistency``).
    consistency : {"label", "margin"}, default="label"
        The consistency term. ``"label"``: a hinge on the classifier's
        confidence gap :math:`p(y|x_1) - p(y|x_2)` for the pair's label,
        ordered as the preference (the paper's term; the reference code's
        ``--consistency``). ``"margin"``: the soft-label margin over all
        classes, which asks every class's probability gap to be at least the
        annotators' soft-label gap, in its direction
        (:func:`soft_label_margin_loss`; the reference code's ``--pair_loss``,
        its shipped recipe with annotation records); needs ``soft_labels``.
    classify_partners : bool, default=False
        Also classify each anchor's partner: the classification loss of a
        pair is :math:`\tfrac12 CE(x_1) + \tfrac12 CE(x_2)`, as in the
        reference code (anchors without a partner keep weight 1). Partners
        are then drawn whenever a preference source exists, even with all
        auxiliary weights at zero. False classifies the anchors only, so a
        comparison with the plain classifier measures the preference terms
        alone.
    sampling : {"random", "disagreement", "inconsistency"}, default="random"
        How each anchor's partner is chosen every epoch among its candidates:
        uniformly; the candidate on which the preference heads disagree most;
        or with probability proportional to how inconsistent the classifier is
        with the pair's preference (soft-label margin when ``soft_labels`` is
        given). The last two start from random pairs in the first epoch.
    n_candidates : int, default=32
        Candidate partners per anchor and epoch (with annotator soft labels
        every same-label text is a candidate; larger groups are subsampled).
    scorer_pairs_per_sample : int, default=2
        With a scoring function as ``preferences``: random same-label partners
        per text that the scorer is asked about (once, before training).
    tie_tol : float, default=0.0
        Soft-label differences up to this size are ties.
    label_target : {"hard", "soft"}, default="hard"
        Classification target: the labels ``y``, or the annotator
        ``soft_labels`` (soft-label training, a baseline).
    label_smoothing : float, default=0.0
        Label smoothing of the classification loss (a baseline).
    {training_params}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    vocabulary_ : list of str
        Words of the tokenizer (empty with a pretrained encoder).
    max_length_ : int
        Token length of the encoded texts.
    feature_dim_ : int
        Dimension of the sentence features.
    preference_source_ : {"soft_labels", "pairs", "scorer"} or None
        Where the pairwise preferences of the last fit came from (None: no
        preferences, plain classifier).
    n_preference_pairs_ : int
        Number of known preference pairs (all same-label pairs are known with
        soft labels; this counts those of explicit or scored pairs).
    {training_attributes}

    See Also
    --------
    neural.text.make_preference_text : Synthetic texts with annotators and preferences.

    Notes
    -----
    ``fit`` and ``partial_fit`` take two extra parameters, both optional.
    ``preferences``, array-like of shape (n_pairs, 3) or callable: rows
    ``(i, j, pref)`` of indices into ``X`` of two texts with the same label
    and the probability that text ``i`` is more ``<label>`` than text ``j``
    (1, 0, or 0.5 for no preference); or a scoring function
    ``scorer(text_a, text_b, label) -> float in [0, 1]`` (the hook for a
    language model), asked about ``scorer_pairs_per_sample`` random
    same-label pairs per text before training. Without it, preferences are
    extracted from ``soft_labels`` when given, else the model is the plain
    classifier. ``soft_labels``, array-like of shape (n_samples, n_classes):
    share (or count) of annotators choosing each class, columns in the order
    of ``np.unique(y)``; used for extracted preferences, for
    ``label_target="soft"`` and for inconsistency-based sampling. A dataset
    passed to ``fit`` yields ``(text, label)`` items (see
    :class:`neural.datasets.TextFolderDataset`); the vocabulary is learned in
    a pass over it and texts are tokenized as they are read.

    References
    ----------
    .. [1] Kim, Hong, Kang, et al. Prefer to Classify: Improving Text
       Classifiers via Auxiliary Preference Learning. ICML 2023.

    Examples
    --------
    >>> from neural.text import P2CClassifier, make_preference_text
    >>> data = make_preference_text(200, random_state=0)
    >>> clf = P2CClassifier(max_iter=2, random_state=0, device="cpu")
    >>> clf.fit(data.texts, data.y, soft_labels=data.soft_labels).predict(data.texts[:3]).shape
    (3,)
    """

    _history_doc = ("``loss_cls``, ``loss_pref``, ``loss_div``, ``loss_cons`` (the terms of "
                    "the loss) and ``pair_fraction`` (anchors with a partner)")

    _parameter_constraints = {
        **BaseTorchClassifier._parameter_constraints,
        "encoder": [StrOptions(set(ENCODERS))],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "n_heads": [Interval(Integral, 1, None, closed="left")],
        "max_length": [Interval(Integral, 1, None, closed="left")],
        "max_vocab": [Interval(Integral, 1, None, closed="left"), None],
        "min_freq": [Interval(Integral, 1, None, closed="left")],
        "pretrained_model": [str, HasMethods(["encode"]), None],
        "n_pref_heads": [Interval(Integral, 0, None, closed="left")],
        "pref_hidden": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Finite(Real, 0, 1, closed="left")],
        "lambda_cls": [Finite(Real, 0, None, closed="left")],
        "lambda_pref": [Finite(Real, 0, None, closed="left")],
        "lambda_div": [Finite(Real, 0, None, closed="left")],
        "lambda_cons": [Finite(Real, 0, None, closed="left")],
        "consistency": [StrOptions({"label", "margin"})],
        "classify_partners": ["boolean"],
        "sampling": [StrOptions(set(SAMPLINGS))],
        "n_candidates": [Interval(Integral, 1, None, closed="left")],
        "scorer_pairs_per_sample": [Interval(Integral, 1, None, closed="left")],
        "tie_tol": [Finite(Real, 0, None, closed="left")],
        "label_target": [StrOptions({"hard", "soft"})],
        "label_smoothing": [Finite(Real, 0, 1, closed="left")],
    }

    __metadata_request__fit = __metadata_request__partial_fit = {"preferences": None,
                                                                 "soft_labels": None}

    def __init__(
        self,
        encoder="bag",
        *,
        embedding_dim=32,
        n_layers=1,
        n_heads=2,
        max_length=64,
        max_vocab=20000,
        min_freq=1,
        pretrained_model=None,
        n_pref_heads=3,
        pref_hidden=32,
        dropout=0.1,
        lambda_cls=1.0,
        lambda_pref=1.0,
        lambda_div=0.1,
        lambda_cons=1.0,
        consistency="label",
        classify_partners=False,
        sampling="random",
        n_candidates=32,
        scorer_pairs_per_sample=2,
        tie_tol=0.0,
        label_target="hard",
        label_smoothing=0.0,
        max_iter=20,
        batch_size=32,
        solver="adam",
        optimizer_kwargs=None,
        learning_rate_init=3e-3,
        learning_rate="cosine",
        momentum=0.9,
        nesterovs_momentum=True,
        weight_decay=0.0,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        random_state=None,
        verbose=0,
        warm_start=False,
        device="auto",
        num_workers=0,
        precision="32",
        distributed="auto",
        callbacks=None,
    ):
        store_params(self, locals())

    # ------------------------------------------------------------ parameters
    def _check_params(self):
        super()._check_params()
        if self.encoder == "transformer" and self.embedding_dim % self.n_heads:
            raise ValueError(
                f"n_heads={self.n_heads} must divide embedding_dim={self.embedding_dim} for "
                "encoder='transformer'."
            )
        if self.encoder == "pretrained" and self.pretrained_model is None:
            raise ValueError(
                "encoder='pretrained' needs pretrained_model: the path of a sentence-"
                "transformers model installed locally (e.g. a saved all-MiniLM-L6-v2) or an "
                "object with an encode(texts) method."
            )

    # ----------------------------------------------------------------- inputs
    def _sentence_encoder(self):
        enc = getattr(self, "_sentence_encoder_", None)
        if enc is None or enc.model is not self.pretrained_model:
            enc = SentenceEncoder(self.pretrained_model)
            self._sentence_encoder_ = enc
        return enc

    def _check_input(self, X, *, reset):
        """Validate ``X`` and return it as a list of str (override to accept other input)."""
        return check_texts(X)

    def _validate(self, X, y=None, *, reset, requires_y=False):
        """Validate raw texts (and y); returns the encoded inputs ``{"x": rows}`` and y."""
        texts = self._check_input(X, reset=reset)
        y = self._check_y(y, len(texts), requires_y)
        return {"x": self._encode(texts, reset=reset).take(slice(None))}, y

    def _check_y(self, y, n, requires_y):
        y = to_numpy(y)
        if requires_y and y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        if y is not None:
            y = self._validate_y(y)
            check_consistent_length(np.empty(n), y)
        return y

    def _encode(self, texts, *, reset):
        """Learn the vocabulary (``reset``) and encode ``texts`` (a list or a lazy sequence)."""
        if self.encoder == "pretrained":
            enc = self._sentence_encoder()
            chunks = [np.asarray(enc.encode([texts[i] for i in range(a, min(a + 256, len(texts)))]),
                                 dtype=np.float32) for a in range(0, len(texts), 256)]
            feats = np.concatenate(chunks)
            if reset:
                self.vocabulary_, self.max_length_ = [], 0
                self.feature_dim_ = int(feats.shape[1])
            elif feats.shape[1] != self.feature_dim_:
                raise ValueError(
                    f"the sentence encoder returned {feats.shape[1]} features, but the model "
                    f"was fitted on {self.feature_dim_}."
                )
            return TextInputs(feats)
        if reset:
            tok = Tokenizer(self.max_vocab, self.min_freq).fit(_iterate(texts))
            self.vocabulary_ = tok.vocabulary_
            self.max_length_ = max(1, min(self.max_length, tok.longest_))
            self.feature_dim_ = self.embedding_dim
        tok, length = self._tokenizer(), self.max_length_
        if isinstance(texts, list):
            return TextInputs(tok.encode(texts, length))
        return LazyTextInputs(texts, lambda text: tok.encode([text], length)[0])

    def _tokenizer(self):
        tok = getattr(self, "_tokenizer_", None)
        if tok is None or tok.vocabulary_ is not self.vocabulary_:
            tok = Tokenizer().set_vocabulary(self.vocabulary_)
            tok.vocabulary_ = self.vocabulary_
            self._tokenizer_ = tok
        return tok

    def _inputs(self, x):
        return x if self.encoder == "pretrained" else x.long()

    def _get_dataset(self, X, y, *, reset, classes=None, preferences=None, soft_labels=None,
                     training=True):
        """Texts, labels and the preference source as a :class:`PairDataset`.

        Validation data (``training=False``) is only classified: it gets no
        partners and needs no soft labels, whatever the loss asks of training.
        """
        if is_dataset(X):
            if y is not None:
                raise ValueError("pass either a dataset of (text, label) items as X with y=None, "
                                 "or texts X and labels y; got a dataset and y.")
            check_map_dataset(X)
            texts = _DatasetTexts(X)
            y_raw = self._check_y(texts.labels(), len(texts), True)
        else:
            texts = self._check_input(X, reset=reset)
            y_raw = self._check_y(y, len(texts), True)
        inputs = self._encode(texts, reset=reset)
        y_enc = self._check_targets(y_raw, reset=reset, classes=classes)
        if not training:
            return PairDataset(inputs, y_enc, use_pairs=False)
        source, soft = self._pair_source(texts, y_raw, y_enc, preferences, soft_labels)
        heads = self.n_pref_heads > 0 and (self.lambda_pref > 0 or self.lambda_div > 0)
        margin = self.consistency == "margin" and self.lambda_cons > 0
        use_pairs = heads or self.lambda_cons > 0 or self.classify_partners
        return PairDataset(inputs, y_enc, source, soft, use_pairs=use_pairs,
                           carry_soft=self.label_target == "soft" or margin)

    def _validation_dataset(self, validation_data):
        # the validation data scores the classifier alone (see _get_dataset)
        if is_dataset(validation_data):
            return self._get_dataset(validation_data, None, reset=False, training=False)
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError("validation_data must be a pair (X_val, y_val) or a dataset of "
                             f"(text, label) items; got {type(validation_data).__name__}.")
        return self._get_dataset(validation_data[0], validation_data[1], reset=False,
                                 training=False)

    def _pair_source(self, texts, y_raw, y_enc, preferences, soft_labels):
        """Where this fit's preferences come from (None: no pairs), and the soft labels."""
        n, k = len(y_enc), len(self.classes_)
        soft = None if soft_labels is None else check_soft_labels(soft_labels, n, k)
        if self.label_target == "soft" and soft is None:
            raise ValueError("label_target='soft' needs soft_labels in fit.")
        if self.consistency == "margin" and self.lambda_cons > 0 and soft is None:
            raise ValueError(
                "consistency='margin' compares the annotators' soft labels of the two texts of "
                "a pair, so it needs soft_labels in fit; use consistency='label' with explicit "
                "pairs or a scoring function.")
        if preferences is None:
            source = None if soft is None else SoftLabelSource(soft, y_enc, self.tie_tol)
        elif callable(preferences):
            rng = check_random_state(self.random_state)
            pairs = random_same_label_pairs(y_enc, self.scorer_pairs_per_sample, rng)
            answered = query_preferences(preferences, texts, y_raw, pairs)
            source = PairSource(*check_preference_pairs(answered, y_enc), n, "scorer")
        else:
            source = PairSource(*check_preference_pairs(preferences, y_enc), n, "pairs")
        return source, soft

    # ------------------------------------------------------------------ model
    def _build_module(self):
        if self.encoder == "pretrained":
            enc = None
        elif self.encoder == "bag":
            enc = BagEncoder(len(self.vocabulary_) + 2, self.embedding_dim)
        else:
            enc = TransformerTextEncoder(len(self.vocabulary_) + 2, self.embedding_dim,
                                         self.max_length_, self.n_layers, self.n_heads,
                                         self.dropout)
        return P2CNet(enc, self.feature_dim_, len(self.classes_), self.n_pref_heads,
                      self.pref_hidden, self.dropout)

    def _forward(self, X):
        return self.module_(self._inputs(X["x"]))

    # ------------------------------------------------------------ training
    def _on_train_begin(self, trainer):
        source = trainer.dataset.source
        self.preference_source_ = None if source is None else source.kind
        self.n_preference_pairs_ = int(getattr(source, "n_pairs", 0))

    def _on_epoch_begin(self, trainer):
        data = trainer.dataset
        if data.has_pairs:
            rows = trainer.train_indices
            # under torch.distributed every process trains on rank 0's pairs
            data.set_partners(rows, *trainer.broadcast(self._sample_pairs(data, rows)))

    def _all_outputs(self, data):
        """Eval-mode probabilities and head scores of every training text (own label)."""
        def run(xb):
            h = self.module_.encode(self._inputs(xb["x"]))
            return (torch.softmax(self.module_.classify(h), 1).double(),
                    self.module_.preference_scores(h, xb["label"]).double().T)

        probs, scores = self._infer({"x": data.inputs, "label": data.y}, run, batch_size=512)
        self.module_.train()
        return probs.numpy(), scores.T.numpy()

    def _sample_pairs(self, data, rows):
        """This epoch's partner of every row in ``rows``, and the pair's preference."""
        rng = self._rng.stream("pairs")
        y = data.y[rows]
        allowed = np.zeros(len(data), dtype=bool)
        allowed[rows] = True
        cand, pref = data.source.candidates(allowed, self.n_candidates, rng)
        cand, pref = cand[rows], pref[rows]
        if self.sampling == "random" or not self.history_ or (
                self.sampling == "disagreement" and self.n_pref_heads < 2):
            partner = random_partners(cand, rng)
        elif self.sampling == "disagreement":
            _, scores = self._all_outputs(data)
            partner = disagreement_partners(scores, rows, cand, rng)
        else:
            proba, _ = self._all_outputs(data)
            safe = np.maximum(cand, 0)
            if data.soft is not None:
                soft = data.soft
                incons = soft_label_margin_loss(proba[rows][:, None, :], proba[safe],
                                                soft[rows][:, None, :], soft[safe])
            else:
                d = proba[rows, y][:, None] - proba[safe, y[:, None]]
                incons = ((pref > 0.5) * np.maximum(-d, 0) + (pref < 0.5) * np.maximum(d, 0)
                          + (pref == 0.5) * np.abs(d))
            partner = inconsistency_partners(incons, cand, rng)
        col = np.argmax(cand == partner[:, None], axis=1)
        p = np.where(partner >= 0, pref[np.arange(len(rows)), col], 0.5)
        return partner, p

    def _classification_loss(self, logits, y, soft):
        """Per-text cross-entropy (hard labels, or soft labels with ``label_target="soft"``)."""
        target = y if self.label_target == "hard" else soft
        return F.cross_entropy(logits, target, label_smoothing=float(self.label_smoothing),
                               reduction="none")

    def _train_losses(self, X, y, phase):
        net = self.module_
        h1 = net.encode(self._inputs(X["x"]))
        logits1 = net.classify(h1)
        ce1 = self._classification_loss(logits1, y, X.get("soft"))
        stats = {}
        aux = 0.0
        l_cls = ce1.mean()
        if "x2" in X:
            has = X["has_pair"]
            if bool(has.any()):
                lab, pref = y[has], X["pref"][has]
                h2 = net.encode(self._inputs(X["x2"][has]))
                logits2 = net.classify(h2)
                if self.classify_partners:
                    # a pair's two texts weigh 1/2 each, an anchor without partner 1
                    soft2 = X["soft2"][has] if "soft2" in X else None
                    ce2 = self._classification_loss(logits2, lab, soft2)
                    l_cls = (torch.where(has, 0.5, 1.0) * ce1).sum() + 0.5 * ce2.sum()
                    l_cls = l_cls / len(ce1)
                if self.n_pref_heads > 0 and (self.lambda_pref > 0 or self.lambda_div > 0):
                    r1 = net.preference_scores(h1[has], lab)
                    r2 = net.preference_scores(h2, lab)
                    l_pref = preference_loss(r1, r2, pref)
                    l_div = diversity_loss(r1, r2)
                    aux = aux + self.lambda_pref * l_pref - self.lambda_div * l_div
                    stats["loss_pref"] = l_pref.detach()
                    stats["loss_div"] = l_div.detach()
                if self.lambda_cons > 0:
                    p1, p2 = torch.softmax(logits1[has], 1), torch.softmax(logits2, 1)
                    if self.consistency == "margin":
                        l_cons = soft_label_margin_loss(p1, p2, X["soft"][has],
                                                        X["soft2"][has]).mean()
                    else:
                        ar = torch.arange(len(lab), device=lab.device)
                        l_cons = consistency_loss(p1[ar, lab], p2[ar, lab], pref)
                    aux = aux + self.lambda_cons * l_cons
                    stats["loss_cons"] = l_cons.detach()
            stats["pair_fraction"] = has.float().mean()
        stats["loss_cls"] = l_cls.detach()
        yield self.lambda_cls * l_cls + aux, stats

    # ------------------------------------------------------------ inference
    def preference_scores(self, X, labels=None):
        """Score texts with the preference heads: how much each text is "more <label>".

        Parameters
        ----------
        X : list, tuple, ndarray or Series of str of shape (n_samples,)
            Texts.
        labels : array-like of shape (n_samples,) or None, default=None
            Label each text is scored for (default: the predicted label).

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Mean of the heads' scores (in [-1, 1]); compare two texts of the
            same label with ``sigmoid(s1 - s2)``.
        """
        check_is_fitted(self, "module_")
        if self.n_pref_heads == 0:
            raise ValueError("this model has no preference heads (n_pref_heads=0).")
        Xe, _ = self._validate(X, reset=False)
        if labels is None:
            labels = self.classes_[self._predict_outputs(Xe).argmax(1).numpy()]
        labels = np.asarray(labels)
        check_consistent_length(Xe["x"], labels)
        if not np.isin(labels, self.classes_).all():
            raise ValueError("labels must be classes seen in fit (classes_).")
        enc = np.searchsorted(self.classes_, labels)

        def run(xb):
            h = self.module_.encode(self._inputs(xb["x"]))
            return self.module_.preference_scores(h, xb["label"]).mean(0).double()

        return self._infer({"x": Xe["x"], "label": enc}, run, batch_size=256).numpy()

    # ---------------------------------------------------------- save / load
    def _fitted_metadata(self):
        return {
            **super()._fitted_metadata(),
            "vocabulary_": list(self.vocabulary_),
            "max_length_": int(self.max_length_),
            "feature_dim_": int(self.feature_dim_),
            "preference_source_": self.preference_source_,
            "n_preference_pairs_": int(self.n_preference_pairs_),
        }

    def _restore_metadata(self, meta):
        super()._restore_metadata(meta)
        for key in ("vocabulary_", "max_length_", "feature_dim_", "preference_source_",
                    "n_preference_pairs_"):
            setattr(self, key, meta[key])

    def __getstate__(self):
        state = super().__getstate__() if hasattr(super(), "__getstate__") else dict(self.__dict__)
        state = dict(state)
        state.pop("_tokenizer_", None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = False
        tags.input_tags.string = True
        return tags


def _iterate(texts):
    return (texts[i] for i in range(len(texts)))


class _DatasetTexts:
    """The texts of a dataset of ``(text, label)`` items, checked as they are read."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def _item(self, i):
        item = self.dataset[i]
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)):
            raise ValueError(f"item {i} of the dataset must be a (text, label) pair with a str "
                             f"text; got {item!r:.80}.")
        return item

    def __getitem__(self, i):
        return self._item(i)[0]

    def labels(self):
        """Every item's label (its ``targets`` attribute, else one pass)."""
        targets = getattr(self.dataset, "targets", None)
        if targets is not None and len(targets) == len(self):
            return np.asarray(targets)
        return np.asarray([self._item(i)[1] for i in range(len(self))])
