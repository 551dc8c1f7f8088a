"""P2CClassifier: text classification with auxiliary pairwise preference learning."""

import numpy as np
import torch
from sklearn.utils import check_random_state, check_scalar
from sklearn.utils.validation import check_consistent_length, check_is_fitted
from torch.nn import functional as F

from .._utils import check_option, to_numpy
from ..base import BaseTorchClassifier
from ..memory import SavedTensorMemory
from ._encoders import BagEncoder, SentenceEncoder, TransformerTextEncoder
from ._losses import consistency_loss, diversity_loss, preference_loss, soft_label_margin_loss
from ._model import P2CNet
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
        Weight of the consistency hinge between the classifier's confidence
        and the preferences.
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
    max_iter : int, default=20
        Maximum number of epochs.
    batch_size : int, default=32
        Anchors per minibatch.
    solver : {"adam", "sgd"}, default="adam"
        Optimizer.
    learning_rate_init : float, default=3e-3
        Initial learning rate.
    learning_rate : {"constant", "cosine"}, default="cosine"
        Learning-rate schedule over ``max_iter`` epochs.
    momentum : float, default=0.9
        SGD momentum.
    nesterovs_momentum : bool, default=True
        Nesterov momentum for SGD.
    weight_decay : float, default=0.0
        L2 penalty.
    early_stopping : bool, default=False
        Stop on a held-out validation accuracy and keep the best weights.
    validation_fraction : float, default=0.1
        Held-out share for early stopping.
    n_iter_no_change : int, default=10
        Epochs without improvement before stopping.
    tol : float, default=1e-4
        Minimum improvement that counts.
    random_state : int, RandomState instance or None, default=None
        Seed of initialisation, shuffling and pair sampling.
    verbose : int, default=0
        Show a progress bar when positive.
    warm_start : bool, default=False
        Continue from the previous fit's weights (and vocabulary).
    device : {"auto", "cpu", "cuda"}, default="auto"
        Training device.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    module_ : P2CNet
        The trained network.
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
    history_ : list of dict
        Per epoch: ``loss`` (total), ``loss_cls``, ``loss_pref``, ``loss_div``,
        ``loss_cons``, ``pair_fraction`` (anchors with a partner), ``lr``,
        ``time``.
    loss_curve_ : list of float
        Total loss per epoch.
    n_iter_ : int
        Epochs run.
    peak_activation_bytes_ : int
        Bytes saved for backward in the first training step of the last fit.
    device_ : torch.device
        Device used.

    See Also
    --------
    neural.text.make_preference_text : Synthetic texts with annotators and preferences.

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

    input_shape = None  # read by the base's parameter check; texts have no image shape

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
        sampling="random",
        n_candidates=32,
        scorer_pairs_per_sample=2,
        tie_tol=0.0,
        label_target="hard",
        label_smoothing=0.0,
        max_iter=20,
        batch_size=32,
        solver="adam",
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
    ):
        self.encoder = encoder
        self.embedding_dim = embedding_dim
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.max_length = max_length
        self.max_vocab = max_vocab
        self.min_freq = min_freq
        self.pretrained_model = pretrained_model
        self.n_pref_heads = n_pref_heads
        self.pref_hidden = pref_hidden
        self.dropout = dropout
        self.lambda_cls = lambda_cls
        self.lambda_pref = lambda_pref
        self.lambda_div = lambda_div
        self.lambda_cons = lambda_cons
        self.sampling = sampling
        self.n_candidates = n_candidates
        self.scorer_pairs_per_sample = scorer_pairs_per_sample
        self.tie_tol = tie_tol
        self.label_target = label_target
        self.label_smoothing = label_smoothing
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.device = device

    # ------------------------------------------------------------ parameters
    def _check_params(self):
        super()._check_params()
        check_option("encoder", self.encoder, ENCODERS)
        check_scalar(self.embedding_dim, "embedding_dim", int, min_val=1)
        check_scalar(self.n_layers, "n_layers", int, min_val=1)
        check_scalar(self.n_heads, "n_heads", int, min_val=1)
        if self.encoder == "transformer" and self.embedding_dim % self.n_heads:
            raise ValueError(
                f"n_heads={self.n_heads} must divide embedding_dim={self.embedding_dim} for "
                "encoder='transformer'."
            )
        check_scalar(self.max_length, "max_length", int, min_val=1)
        if self.max_vocab is not None:
            check_scalar(self.max_vocab, "max_vocab", int, min_val=1)
        check_scalar(self.min_freq, "min_freq", int, min_val=1)
        if self.encoder == "pretrained" and self.pretrained_model is None:
            raise ValueError(
                "encoder='pretrained' needs pretrained_model: the path of a sentence-"
                "transformers model installed locally (e.g. a saved all-MiniLM-L6-v2) or an "
                "object with an encode(texts) method."
            )
        check_scalar(self.n_pref_heads, "n_pref_heads", int, min_val=0)
        check_scalar(self.pref_hidden, "pref_hidden", int, min_val=1)
        check_scalar(self.dropout, "dropout", float, min_val=0, max_val=1,
                     include_boundaries="left")
        for name in ("lambda_cls", "lambda_pref", "lambda_div", "lambda_cons"):
            check_scalar(getattr(self, name), name, (int, float), min_val=0)
        check_option("sampling", self.sampling, SAMPLINGS)
        check_scalar(self.n_candidates, "n_candidates", int, min_val=1)
        check_scalar(self.scorer_pairs_per_sample, "scorer_pairs_per_sample", int, min_val=1)
        check_scalar(self.tie_tol, "tie_tol", (int, float), min_val=0)
        check_option("label_target", self.label_target, ("hard", "soft"))
        check_scalar(self.label_smoothing, "label_smoothing", (int, float), min_val=0,
                     max_val=1, include_boundaries="left")

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
        """Validate raw texts (and y); returns the encoded rows ``[index, ids...]``."""
        return self._encode(self._check_input(X, reset=reset), y, reset=reset,
                            requires_y=requires_y)

    def _encode(self, texts, y=None, *, reset, requires_y=False):
        y = to_numpy(y)
        if requires_y and y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        if y is not None:
            y = self._validate_y(y)
            check_consistent_length(texts, y)
        if self.encoder == "pretrained":
            feats = self._sentence_encoder().encode(texts)
            if reset:
                self.vocabulary_, self.max_length_ = [], 0
                self.feature_dim_ = int(feats.shape[1])
            elif feats.shape[1] != self.feature_dim_:
                raise ValueError(
                    f"the sentence encoder returned {feats.shape[1]} features, but the model "
                    f"was fitted on {self.feature_dim_}."
                )
            body = feats
        else:
            if reset:
                tok = Tokenizer(self.max_vocab, self.min_freq).fit(texts)
                self.vocabulary_ = tok.vocabulary_
                longest = int(tok.lengths(texts).max(initial=1))
                self.max_length_ = max(1, min(self.max_length, longest))
                self.feature_dim_ = self.embedding_dim
            body = self._tokenizer().encode(texts, self.max_length_).astype(np.float32)
        index = np.arange(len(texts), dtype=np.float32)[:, None]
        return np.ascontiguousarray(np.hstack([index, body]), dtype=np.float32), y

    def _tokenizer(self):
        tok = getattr(self, "_tokenizer_", None)
        if tok is None or tok.vocabulary_ is not self.vocabulary_:
            tok = Tokenizer().set_vocabulary(self.vocabulary_)
            tok.vocabulary_ = self.vocabulary_
            self._tokenizer_ = tok
        return tok

    def _inputs(self, x):
        body = x[:, 1:]
        return body if self.encoder == "pretrained" else body.long()

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
        return self.module_(self._inputs(X))

    def _compute_loss(self, X, y):
        return F.cross_entropy(self._forward(X), y, label_smoothing=float(self.label_smoothing))

    def _init_state(self, X, y):
        super()._init_state(X, y)
        # its own stream: pair sampling never shifts the minibatch order
        self._pair_rng = np.random.RandomState(self._shuffle_rng.randint(np.iinfo(np.int32).max))

    # -------------------------------------------------------------------- fit
    def fit(self, X, y, preferences=None, soft_labels=None):
        """Train on raw texts, optionally with pairwise preferences and annotator soft labels.

        Parameters
        ----------
        X : list, tuple, ndarray or Series of str of shape (n_samples,)
            Training texts.
        y : array-like of shape (n_samples,)
            Labels.
        preferences : array-like of shape (n_pairs, 3), callable or None, default=None
            Explicit preferences, rows ``(i, j, pref)``: indices into ``X`` of
            two texts with the same label and the probability that text ``i``
            is more ``<label>`` than text ``j`` (1, 0, or 0.5 for no
            preference). Or a scoring function ``scorer(text_a, text_b,
            label) -> float in [0, 1]`` (the hook for a language model),
            asked about ``scorer_pairs_per_sample`` random same-label pairs
            per text before training. None: preferences are extracted from
            ``soft_labels`` when given, else the model is the plain classifier.
        soft_labels : array-like of shape (n_samples, n_classes) or None, default=None
            Share (or count) of annotators choosing each class, columns in the
            order of ``np.unique(y)``. Used for extracted preferences, for
            ``label_target="soft"`` and for inconsistency-based sampling.

        Returns
        -------
        self : P2CClassifier
            The fitted estimator.
        """
        self._check_params()
        resume = self.warm_start and hasattr(self, "module_")
        texts = self._check_input(X, reset=not resume)
        Xe, y_raw = self._encode(texts, y, reset=not resume, requires_y=True)
        y_enc = self._check_targets(y_raw, reset=not resume)
        self._prepare_pairs(texts, y_raw, y_enc, Xe, preferences, soft_labels)
        try:
            return self._fit(Xe, y_enc, resume=resume, n_epochs=self.max_iter, incremental=False)
        finally:
            self._aux = None

    def partial_fit(self, X, y, classes=None, preferences=None, soft_labels=None):
        """Run one epoch over ``X, y``, starting from the current weights.

        The vocabulary is learned on the first call.

        Parameters
        ----------
        X : list, tuple, ndarray or Series of str of shape (n_samples,)
            Texts.
        y : array-like of shape (n_samples,)
            Labels.
        classes : array-like of shape (n_classes,), default=None
            All labels that will ever appear (first call only).
        preferences : array-like of shape (n_pairs, 3), callable or None, default=None
            As in :meth:`fit`, indices into this ``X``.
        soft_labels : array-like of shape (n_samples, n_classes) or None, default=None
            As in :meth:`fit`.

        Returns
        -------
        self : P2CClassifier
            The updated estimator.
        """
        first = not hasattr(self, "module_")
        if first:
            self._check_params()
        texts = self._check_input(X, reset=first)
        Xe, y_raw = self._encode(texts, y, reset=first, requires_y=True)
        y_enc = self._check_targets(y_raw, reset=first, classes=classes)
        self._prepare_pairs(texts, y_raw, y_enc, Xe, preferences, soft_labels)
        try:
            return self._fit(Xe, y_enc, resume=not first, n_epochs=1, incremental=True)
        finally:
            self._aux = None

    def _prepare_pairs(self, texts, y_raw, y_enc, Xe, preferences, soft_labels):
        n, k = len(texts), len(self.classes_)
        soft = None if soft_labels is None else check_soft_labels(soft_labels, n, k)
        if self.label_target == "soft" and soft is None:
            raise ValueError("label_target='soft' needs soft_labels in fit.")
        if preferences is None:
            source = None if soft is None else SoftLabelSource(soft, y_enc, self.tie_tol)
        elif callable(preferences):
            rng = check_random_state(self.random_state)
            pairs = random_same_label_pairs(y_enc, self.scorer_pairs_per_sample, rng)
            answered = query_preferences(preferences, texts, y_raw, pairs)
            source = PairSource(*check_preference_pairs(answered, y_enc), n, "scorer")
        else:
            source = PairSource(*check_preference_pairs(preferences, y_enc), n, "pairs")
        self.preference_source_ = None if source is None else source.kind
        self.n_preference_pairs_ = int(getattr(source, "n_pairs", 0))
        self._aux = {"X": Xe, "y": y_enc, "soft": soft, "source": source}

    # ------------------------------------------------------------ training
    def _pairs_active(self):
        aux = getattr(self, "_aux", None)
        heads = self.n_pref_heads > 0 and (self.lambda_pref > 0 or self.lambda_div > 0)
        return (aux is not None and aux["source"] is not None
                and (heads or self.lambda_cons > 0))

    def _all_outputs(self):
        """Eval-mode probabilities and head scores of every training text (own label)."""
        aux = self._aux
        self.module_.eval()
        probs, scores = [], []
        with torch.no_grad():
            for start in range(0, len(aux["X"]), 512):
                xb = self._tensor(aux["X"][start:start + 512], torch.float32)
                yb = self._tensor(aux["y"][start:start + 512], torch.int64)
                h = self.module_.encode(self._inputs(xb))
                probs.append(torch.softmax(self.module_.classify(h), 1).double().cpu())
                scores.append(self.module_.preference_scores(h, yb).double().cpu())
        self.module_.train()
        return torch.cat(probs).numpy(), torch.cat(scores, 1).numpy()

    def _sample_pairs(self, rows, y):
        aux, rng = self._aux, self._pair_rng
        n = len(aux["X"])
        allowed = np.zeros(n, dtype=bool)
        allowed[rows] = True
        cand, pref = aux["source"].candidates(allowed, self.n_candidates, rng)
        cand, pref = cand[rows], pref[rows]
        first_epoch = not self.history_ if hasattr(self, "history_") else True
        if self.sampling == "random" or first_epoch:
            partner = random_partners(cand, rng)
        elif self.sampling == "disagreement":
            if self.n_pref_heads < 2:
                partner = random_partners(cand, rng)
            else:
                _, scores = self._all_outputs()
                partner = disagreement_partners(scores, rows, cand, rng)
        else:
            proba, _ = self._all_outputs()
            safe = np.maximum(cand, 0)
            if aux["soft"] is not None:
                soft = aux["soft"]
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

    def _run_epoch(self, X, y):
        self.module_.train()
        rows = X[:, 0].astype(np.int64)
        active = self._pairs_active()
        if active:
            partner, pref = self._sample_pairs(rows, y)
        totals, seen = {}, 0
        for idx in self._batches(len(X)):
            xb = self._tensor(X[idx], torch.float32)
            yb = self._tensor(y[idx], torch.int64)
            batch = {"x": xb, "y": yb, "rows": rows[idx]}
            if active:
                has = partner[idx] >= 0
                batch["has_pair"] = torch.from_numpy(has).to(self.device_)
                batch["x2"] = self._tensor(self._aux["X"][partner[idx][has]], torch.float32)
                batch["pref"] = self._tensor(pref[idx][has], torch.float32)
            if self._pending_saved:
                with SavedTensorMemory(self.module_.parameters()) as mem:
                    stats = self._pair_step(batch)
                self.peak_activation_bytes_ = int(mem.peak_bytes)
                self._pending_saved = False
            else:
                stats = self._pair_step(batch)
            n = len(idx)
            seen += n
            for key, value in stats.items():
                totals[key] = totals.get(key, 0.0) + value * n
        self._pending_cuda = False
        return {key: value / seen for key, value in totals.items()}

    def _classification_loss(self, logits, y, rows):
        smoothing = float(self.label_smoothing)
        if self.label_target == "soft":
            target = self._tensor(self._aux["soft"][rows], torch.float32)
            return F.cross_entropy(logits, target, label_smoothing=smoothing)
        return F.cross_entropy(logits, y, label_smoothing=smoothing)

    def _pair_step(self, batch):
        """One optimisation step of the P2C loss; returns the loss terms as floats."""
        self.optimizer_.zero_grad(set_to_none=True)
        net = self.module_
        h1 = net.encode(self._inputs(batch["x"]))
        logits1 = net.classify(h1)
        l_cls = self._classification_loss(logits1, batch["y"], batch["rows"])
        total = self.lambda_cls * l_cls
        stats = {"loss_cls": float(l_cls.detach())}
        if "x2" in batch and len(batch["x2"]):
            has = batch["has_pair"]
            lab = batch["y"][has]
            pref = batch["pref"]
            h2 = net.encode(self._inputs(batch["x2"]))
            if self.n_pref_heads > 0 and (self.lambda_pref > 0 or self.lambda_div > 0):
                r1 = net.preference_scores(h1[has], lab)
                r2 = net.preference_scores(h2, lab)
                l_pref = preference_loss(r1, r2, pref)
                l_div = diversity_loss(r1, r2)
                total = total + self.lambda_pref * l_pref - self.lambda_div * l_div
                stats["loss_pref"] = float(l_pref.detach())
                stats["loss_div"] = float(l_div.detach())
            if self.lambda_cons > 0:
                ar = torch.arange(len(lab), device=lab.device)
                p1 = torch.softmax(logits1[has], 1)[ar, lab]
                p2 = torch.softmax(net.classify(h2), 1)[ar, lab]
                l_cons = consistency_loss(p1, p2, pref)
                total = total + self.lambda_cons * l_cons
                stats["loss_cons"] = float(l_cons.detach())
            stats["pair_fraction"] = float(has.float().mean())
        total.backward()
        self.optimizer_.step()
        stats["loss"] = float(total.detach())
        return stats

    # ------------------------------------------------------------ inference
    def predict_proba(self, X):
        """Class probabilities (softmax of the classification head).

        Parameters
        ----------
        X : list, tuple, ndarray or Series of str of shape (n_samples,)
            Texts.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_``.
        """
        return super().predict_proba(X)

    def predict(self, X):
        """Predicted labels.

        Parameters
        ----------
        X : list, tuple, ndarray or Series of str of shape (n_samples,)
            Texts.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        return super().predict(X)

    def score(self, X, y, sample_weight=None):
        """Mean accuracy on texts ``X`` and labels ``y``.

        Parameters
        ----------
        X : list, tuple, ndarray or Series of str of shape (n_samples,)
            Texts.
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            Share of correctly predicted labels (weighted).
        """
        return super().score(X, y, sample_weight=sample_weight)

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
        check_consistent_length(Xe, labels)
        if not np.isin(labels, self.classes_).all():
            raise ValueError("labels must be classes seen in fit (classes_).")
        enc = np.searchsorted(self.classes_, labels)
        self.module_.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(Xe), 256):
                xb = self._tensor(Xe[start:start + 256], torch.float32)
                yb = self._tensor(enc[start:start + 256], torch.int64)
                h = self.module_.encode(self._inputs(xb))
                out.append(self.module_.preference_scores(h, yb).mean(0).double().cpu())
        return torch.cat(out).numpy()

    # ---------------------------------------------------------- save / load
    def _fitted_metadata(self):
        return {
            "n_iter_": int(self.n_iter_),
            "history_": self.history_,
            "loss_curve_": [float(v) for v in self.loss_curve_],
            "peak_activation_bytes_": getattr(self, "peak_activation_bytes_", None),
            "peak_cuda_memory_bytes_": getattr(self, "peak_cuda_memory_bytes_", None),
            "classes_": self.classes_.tolist(),
            "classes_dtype": self.classes_.dtype.str if self.classes_.dtype != object else "O",
            "vocabulary_": list(self.vocabulary_),
            "max_length_": int(self.max_length_),
            "feature_dim_": int(self.feature_dim_),
            "preference_source_": self.preference_source_,
            "n_preference_pairs_": int(self.n_preference_pairs_),
        }

    def _restore_metadata(self, meta):
        for key in ("n_iter_", "history_", "loss_curve_", "peak_activation_bytes_",
                    "peak_cuda_memory_bytes_", "vocabulary_", "max_length_", "feature_dim_",
                    "preference_source_", "n_preference_pairs_"):
            setattr(self, key, meta[key])
        self.classes_ = np.asarray(meta["classes_"], dtype=np.dtype(meta["classes_dtype"]))

    def __getstate__(self):
        state = super().__getstate__() if hasattr(super(), "__getstate__") else dict(self.__dict__)
        state = dict(state)
        state.pop("_aux", None)
        state.pop("_tokenizer_", None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = False
        tags.input_tags.string = True
        return tags
