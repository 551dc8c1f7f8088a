"""SDLClassifier: the scikit-learn estimator over the LPGD and BCD solver functions."""

import math
import time
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.metrics import accuracy_score
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_non_negative, validate_data

from ._backend import check_same_namespace, device_of, get_namespace, is_numpy_namespace, to_numpy
from ._bcd import bcd
from ._coding import encode
from ._data import times_power_of_two
from ._history import KEYS
from ._lpgd import lpgd
from ._objective import class_scores, full_probabilities
from ._params import BCD, COMMON, LPGD
from ._stream import StreamState


class SDLClassifier(ClassNamePrefixFeaturesOutMixin, ClassifierMixin, TransformerMixin, BaseEstimator):
    """Supervised dictionary learning classifier with auxiliary covariates.

    Learns a dictionary ``W`` (atoms in ``components_``) that reconstructs the features and,
    jointly, a multinomial logistic regression that reads either the filter ``W^T x``
    (``mode='filter'``) or the codes ``h`` (``mode='feature'``), plus auxiliary covariates
    ``x'`` that enter the classifier directly and are not reconstructed. It minimises::

        sum_i w_i l(y_i, s_i) + xi ||X - H W^T||_F^2 + penalty

        filter:  s_i = beta^T W^T x_i + gamma^T x'_i + b
        feature: s_i = beta^T h_i     + gamma^T x'_i + b

    where ``l`` is the multinomial logistic loss with the first class as baseline (the sigmoid
    loss for two classes), ``w_i`` are class weights and the penalty is a ridge
    ``alpha / 2 (||W beta||^2 + ||gamma||^2)`` (filter) or
    ``alpha / 2 (||H beta||^2 / n + ||gamma||^2)`` (feature). For three classes or more the
    ridge is that of the symmetric multinomial parameterization, ``||V||^2`` replaced by
    ``tr(V (I - 1 1^T / K) V^T)`` on the contrasts ``V``: the fit does not depend on the order
    of the labels (relabelling the classes only permutes the columns of ``predict_proba``).

    The solvers work on an internally rescaled problem with the same minimiser, so the units of
    ``X`` and of the covariates do not matter (data of order 1e-300 or 1e300 is fitted like
    data of order one), and they never return a model with a non-finite parameter.

    Two solvers: ``'lpgd'`` (low-rank projected gradient on the lifted convex formulation;
    converges exponentially to the global minimum under the paper's conditions, the default)
    and ``'bcd'`` (block coordinate descent on the factors; supports nonnegativity and the
    diminishing search radius of the paper).

    Read more in the :ref:`User Guide <sdl>`.

    Parameters
    ----------
    n_components : int or None, default=None
        Number of dictionary atoms ``r``. ``None`` takes ``min(10, n_samples, n_features)``;
        more than ``min(n_samples, n_features)`` is an error.
    mode : {'filter', 'feature'}, default='filter'
        Classify from the filter ``W^T x`` (predictions need no coding step) or from the codes.
    solver : {'lpgd', 'bcd'}, default='lpgd'
        Optimisation algorithm.
    xi : float, default=1.0
        Weight of the reconstruction error (``1 / (2 sigma^2)`` for Gaussian noise of variance
        ``sigma^2``). Small values favour classification, large ones reconstruction.
    alpha : float, default=1.0
        Ridge penalty of the classifier (in filter mode with full rank, ``alpha = 1`` matches
        ``LogisticRegression(C=1)``, binary or multinomial).
    nonnegative : bool, default=False
        Nonnegative dictionary and codes (supervised NMF, e.g. topics of word counts).
        Needs ``solver='bcd'`` and nonnegative ``X``.
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes in the logistic loss, as in ``LogisticRegression``.
    aux_features : array-like of int, bool or str, default=None
        Columns of ``X`` that are auxiliary covariates (indices, a boolean mask, or column
        names of a DataFrame). They enter the classifier directly and are not reconstructed.
        Covariates can also be passed as ``X_aux`` to ``fit`` and ``predict``.
    max_iter : int, default=200
        Maximum number of iterations of the solver.
    tol : float, default=1e-6
        Stop when the decrease of the objective over one iteration falls below ``tol``
        times its classifier part (logistic loss + penalty): the reconstruction term can be
        far larger and nearly constant, so it is not the scale that measures progress.
    step_size : 'auto' or float, default='auto'
        'auto' derives every block's step from its curvature (and adapts it in LPGD).
        A float ``rho`` takes ``rho / L`` per block; steps that would increase the objective
        are still shortened.
    projection : {'auto', 'gram', 'subspace'}, default='auto'
        LPGD's rank projection: exact through the Gram matrix of the smaller side of ``X``,
        or a warm-started block eigensolver on products with ``X`` for large or sparse ``X``
        ('auto': exact when ``min(n_samples, n_features) <= 4 (n_components + 10)``).
    block_max_iter : int, default=5
        BCD: projected-gradient steps per block and sweep (Newton-CG steps for the
        classifier block).
    radius : float or None, default=None
        BCD: constant of the diminishing search radius ``radius / ((t+1)^radius_decay log(t+2))``;
        ``None`` is plain BCD.
    radius_decay : float, default=0.5
        BCD: exponent of the search radius schedule.
    transform_max_iter : int, default=200
        Iterations of the nonnegative least-squares coding (``nonnegative=True``).
    random_state : int, RandomState instance or None, default=None
        Seeds the randomized SVDs. Pass an int for reproducible results.
    warm_start : bool, default=False
        Start from the previous solution when refitting on data of the same shape.
    verbose : int, default=0
        1 shows a progress bar with the objective (tqdm, when installed; otherwise a line
        every 10 iterations), 2 prints a line per iteration.
    callback : callable, default=None
        ``callback(iteration, factors, entry)`` is called for the starting point (iteration 0)
        and after every iteration of ``fit``, with the current factors (the attributes of an
        :class:`SDLResult`, built only when read) and the iteration's values of ``history_``;
        returning ``True`` stops the fit.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_main_features)
        Dictionary atoms, one per row (``W`` transposed), over the reconstructed features.
    coef_ : ndarray of shape (n_classes - 1, n_components)
        Classifier weights ``beta`` (of ``W^T x`` or of the codes), one row per class after
        the baseline.
    aux_coef_ : ndarray of shape (n_classes - 1, n_aux)
        Weights ``gamma`` of the auxiliary covariates.
    intercept_ : ndarray of shape (n_classes - 1,)
        Intercepts of the classes after the baseline.
    classes_ : ndarray of shape (n_classes,)
        Class labels; ``classes_[0]`` is the baseline class.
    n_components_ : int
        Number of atoms used.
    n_aux_ : int
        Number of auxiliary covariates.
    n_iter_ : int
        Iterations run by the solver.
    history_ : dict of lists
        Per iteration: ``objective``, ``logistic``, ``reconstruction``, ``penalty``,
        ``stationarity`` and ``time`` (seconds since the start of the fit).
    n_features_in_ : int
        Number of columns of ``X`` seen in fit (auxiliary columns included).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of ``X``, when it was a DataFrame with string column names.

    See Also
    --------
    sdlearn.lpgd : The LPGD solver as a function.
    sdlearn.bcd : The BCD solver as a function.
    sklearn.decomposition.DictionaryLearning : Unsupervised dictionary learning.

    References
    ----------
    J. Lee, H. Lyu, W. Yao. Supervised Dictionary Learning with Auxiliary Covariates.
    arXiv:2206.06774, 2022.

    Examples
    --------
    >>> from sdlearn import SDLClassifier
    >>> from sdlearn.datasets import make_sdl_classification
    >>> data = make_sdl_classification(n_samples=300, n_features=30, n_components=3, random_state=0)
    >>> clf = SDLClassifier(n_components=3, xi=0.5, random_state=0).fit(data.data, data.target)
    >>> clf.components_.shape
    (3, 30)
    >>> round(clf.score(data.data, data.target), 2) > 0.6
    True
    """

    _parameter_constraints = {
        **COMMON,
        "projection": LPGD["projection"],
        **BCD,
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "solver": [StrOptions({"lpgd", "bcd"})],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "aux_features": ["array-like", None],
        "transform_max_iter": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
    }

    def __init__(
        self,
        n_components=None,
        *,
        mode="filter",
        solver="lpgd",
        xi=1.0,
        alpha=1.0,
        nonnegative=False,
        class_weight=None,
        aux_features=None,
        max_iter=200,
        tol=1e-6,
        step_size="auto",
        projection="auto",
        block_max_iter=5,
        radius=None,
        radius_decay=0.5,
        transform_max_iter=200,
        random_state=None,
        warm_start=False,
        verbose=0,
        callback=None,
    ):
        self.n_components = n_components
        self.mode = mode
        self.solver = solver
        self.xi = xi
        self.alpha = alpha
        self.nonnegative = nonnegative
        self.class_weight = class_weight
        self.aux_features = aux_features
        self.max_iter = max_iter
        self.tol = tol
        self.step_size = step_size
        self.projection = projection
        self.block_max_iter = block_max_iter
        self.radius = radius
        self.radius_decay = radius_decay
        self.transform_max_iter = transform_max_iter
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.callback = callback

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, X, y, X_aux=None):
        """Fit the dictionary and the classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; the columns named by ``aux_features`` are auxiliary covariates.
        y : array-like of shape (n_samples,)
            Class labels.
        X_aux : array-like of shape (n_samples, n_aux), default=None
            Further auxiliary covariates (after those selected by ``aux_features``).
            Routed by metadata routing when requested with ``set_fit_request(X_aux=True)``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._validate_params()
        if self.nonnegative and self.solver != "bcd":
            raise ValueError("nonnegative=True needs solver='bcd' (LPGD's lifted matrix cannot keep W, H >= 0).")
        xp = get_namespace(X)
        X, y = validate_data(self, X, y, accept_sparse=("csr", "csc"), dtype=(xp.float64, xp.float32))
        y = to_numpy(y)  # labels live on the host (classes_ may be strings); solvers move them
        check_classification_targets(y)
        mask = self._resolve_aux_mask()
        # plain tuples: fitted arrays must live in X's namespace, these index columns
        self._main_columns = tuple(int(i) for i in np.flatnonzero(~mask))
        self._aux_columns = tuple(int(i) for i in np.flatnonzero(mask))
        X_main, X_all_aux = self._split(X, X_aux, fitting=True)
        n, p = X_main.shape
        if len(np.unique(y)) < 2:
            raise ValueError(f"y has only one class ({np.unique(y)[0]!r}); SDLClassifier needs at least two.")
        r = min(10, n, p) if self.n_components is None else self.n_components
        if r > min(n, p):
            raise ValueError(
                f"n_components={r} is larger than min(n_samples, n_features) = min({n}, {p}); "
                f"choose n_components <= {min(n, p)}."
            )
        if self.nonnegative:
            check_non_negative(X_main, "SDLClassifier with nonnegative=True (X)")
        sample_weight = None if self.class_weight is None else compute_sample_weight(self.class_weight, y)
        init = self._warm_start_init(X_main.shape, X_all_aux)
        common = dict(
            n_components=r, mode=self.mode, X_aux=X_all_aux, sample_weight=sample_weight,
            xi=self.xi, alpha=self.alpha, max_iter=self.max_iter, tol=self.tol,
            step_size=self.step_size, init=init, random_state=self.random_state, verbose=self.verbose,
            callback=self.callback,
        )
        if self.solver == "lpgd":
            result = lpgd(X_main, y, projection=self.projection, **common)
        else:
            result = bcd(
                X_main, y, nonnegative=self.nonnegative, block_max_iter=self.block_max_iter,
                radius=self.radius, radius_decay=self.radius_decay, **common,
            )
        self._result = result
        self._data_scale = result.state["scales"].data
        self.__dict__.pop("_stream", None)  # a full fit forgets any partial_fit stream
        self.components_ = result.components
        self.coef_ = result.coef
        self.aux_coef_ = result.aux_coef
        self.intercept_ = result.intercept
        self.classes_ = result.classes
        self.n_components_ = r
        self.n_aux_ = 0 if X_all_aux is None else X_all_aux.shape[1]
        self.n_iter_ = result.n_iter
        self.history_ = result.history
        return self

    def _streamable(self):
        if self.solver != "bcd" or self.mode != "feature":
            raise AttributeError(
                "partial_fit streams mode='feature' with solver='bcd' (codes belong to single "
                "samples); filter mode's dictionary step needs the whole X at once: use fit."
            )
        return True

    @available_if(_streamable)
    def partial_fit(self, X, y, classes=None, X_aux=None):
        """Update the model with one mini-batch (streaming; ``mode='feature'``, ``solver='bcd'``).

        Each batch is seen once: its codes are computed on the current dictionary, then the
        dictionary minimises the reconstruction surrogate of every sample seen so far (Mairal et
        al.'s online dictionary learning; atoms kept in the unit ball) and the classifier the
        accumulated second-order expansions of the batches' logistic losses. Memory does not
        grow with the number of samples, so data larger than memory can be streamed (e.g. the
        blocks of a Dask array, computed one at a time).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            One batch.
        y : array-like of shape (n_samples,)
            Its labels.
        classes : array-like of shape (n_classes,), default=None
            All the classes of the stream. Required on the first call unless the first batch
            holds every class; ignored afterwards.
        X_aux : array-like of shape (n_samples, n_aux), default=None
            Auxiliary covariates of the batch, as in fit.

        Returns
        -------
        self : object
            The updated estimator.
        """
        first = getattr(self, "_stream", None) is None
        if first:
            self._validate_params()
            if isinstance(self.class_weight, str):
                raise ValueError("class_weight='balanced' needs the whole y; pass a dict of weights to partial_fit.")
        X, y = validate_data(self, X, y, accept_sparse=("csr", "csc"), dtype=(np.float64, np.float32), reset=first)
        y = to_numpy(y)
        check_classification_targets(y)
        if first:
            labels = np.unique(y if classes is None else np.asarray(classes))
            if len(labels) < 2:
                raise ValueError("partial_fit needs at least two classes: pass classes= on the first call.")
            mask = self._resolve_aux_mask()
            self._main_columns = tuple(int(i) for i in np.flatnonzero(~mask))
            self._aux_columns = tuple(int(i) for i in np.flatnonzero(mask))
            X_main, aux = self._split(X, X_aux, fitting=True)
            p = X_main.shape[1]
            r = min(10, p) if self.n_components is None else self.n_components
            if r > p:
                raise ValueError(f"n_components={r} is larger than n_features = {p}.")
            self.n_aux_ = 0 if aux is None else aux.shape[1]
            self.n_components_ = r
            self.classes_ = labels
            self.history_ = {key: [] for key in KEYS}
            self._stream = StreamState(
                labels, p, self.n_aux_, r, xi=self.xi, alpha=self.alpha, nonnegative=self.nonnegative,
                block_max_iter=self.block_max_iter, random_state=self.random_state,
            )
        else:
            X_main, aux = self._split(X, X_aux)
        if self.nonnegative:
            check_non_negative(X_main, "SDLClassifier with nonnegative=True (X)")
        sample_weight = None if self.class_weight is None else compute_sample_weight(self.class_weight, y)
        start = time.perf_counter()
        parts = self._stream.update(X_main, y, aux, sample_weight)
        W, beta, gamma, b = self._stream.factors()
        self._data_scale = self._stream.scales.data
        self.components_ = W.T
        self.coef_ = beta.T
        self.aux_coef_ = gamma.T if gamma is not None else np.zeros((len(self.classes_) - 1, 0))
        self.intercept_ = b
        self.n_iter_ = self._stream.n_batches
        parts.update(stationarity=float("nan"), time=time.perf_counter() - start)
        for key in KEYS:
            self.history_[key].append(float(parts[key]))
        return self

    def _warm_start_init(self, main_shape, X_aux):
        previous = getattr(self, "_result", None)
        if not self.warm_start or previous is None:
            return None
        n_aux = 0 if X_aux is None else X_aux.shape[1]
        same = (
            previous.solver == self.solver and previous.mode == self.mode
            and previous.codes.shape[0] == main_shape[0] and previous.components.shape[1] == main_shape[1]
            and previous.components.shape[0] == self.n_components_ and n_aux == self.n_aux_
        )
        return previous if same else None

    # -- covariates -------------------------------------------------------------------------
    def _resolve_aux_mask(self):
        """Boolean mask over the columns of X selecting the auxiliary covariates."""
        mask = np.zeros(self.n_features_in_, dtype=bool)
        if self.aux_features is None:
            return mask
        selector = np.asarray(self.aux_features)
        if selector.dtype == bool:
            if selector.shape != (self.n_features_in_,):
                raise ValueError(f"aux_features as a mask needs {self.n_features_in_} entries, got {selector.shape}.")
            return selector.copy()
        if selector.dtype.kind in "USO":
            names = getattr(self, "feature_names_in_", None)
            if names is None:
                raise ValueError("aux_features holds column names, but X has no column names (pass a DataFrame).")
            missing = sorted(set(selector.tolist()) - set(names.tolist()))
            if missing:
                raise ValueError(f"aux_features names columns that X does not have: {missing}.")
            mask[np.isin(names, selector)] = True
            return mask
        if selector.dtype.kind not in "iu" or selector.ndim != 1:
            raise ValueError("aux_features must be column indices, a boolean mask or column names.")
        if np.any((selector < -self.n_features_in_) | (selector >= self.n_features_in_)):
            raise ValueError(f"aux_features indices must lie in [0, {self.n_features_in_}), got {selector.tolist()}.")
        mask[selector] = True
        return mask

    def _split(self, X, X_aux, fitting=False):
        """Main features and all auxiliary covariates (selected columns, then ``X_aux``)."""
        if not self._main_columns:
            raise ValueError("aux_features selects every column of X; at least one feature must be reconstructed.")
        xp = get_namespace(X)
        X_main = self._main(X, xp)
        parts = []
        if self._aux_columns:
            selected = _columns(X, self._aux_columns, xp)
            parts.append(xp.asarray(selected.toarray()) if sp.issparse(selected) else selected)
        if X_aux is not None:
            X_aux = check_array(X_aux, dtype=(xp.float64, xp.float32), input_name="X_aux")
            if X_aux.shape[0] != X.shape[0]:
                raise ValueError(f"X_aux has {X_aux.shape[0]} rows but X has {X.shape[0]}; they must match.")
            parts.append(xp.astype(X_aux, X.dtype) if X_aux.dtype != X.dtype else X_aux)
        aux = (xp.concat(parts, axis=1) if len(parts) > 1 else parts[0]) if parts else None
        if not fitting:
            n_aux = 0 if aux is None else aux.shape[1]
            if n_aux != self.n_aux_:
                raise ValueError(
                    f"{type(self).__name__} was fitted with {self.n_aux_} auxiliary covariates but got {n_aux}; "
                    "pass the same X_aux columns as in fit."
                )
        return X_main, aux

    def _main(self, X, xp):
        """The reconstructed (non-auxiliary) columns of ``X``."""
        return _columns(X, self._main_columns, xp) if self._aux_columns else X

    def _validated(self, X, X_aux, method):
        check_is_fitted(self)
        check_same_namespace(X, self, attribute="components_", method=method)
        xp = get_namespace(X)
        X = validate_data(self, X, accept_sparse=("csr", "csc"), dtype=(xp.float64, xp.float32), reset=False)
        return self._split(X, X_aux)

    # -- prediction ---------------------------------------------------------------------------
    def _scores(self, X, X_aux, method):
        """Class scores against the baseline, shape (n_samples, n_classes - 1)."""
        X_main, aux = self._validated(X, X_aux, method)
        xp = get_namespace(self.components_)
        dtype = X_main.dtype
        W = xp.astype(self.components_, dtype).T
        beta = xp.astype(self.coef_, dtype).T
        codes = None
        if self.mode == "feature":
            # codes of X / scale and coefficients times scale (exact): no overflow near the float range
            codes = self._encode(X_main, W, xp)
            beta = times_power_of_two(beta, _exponent(self._scale()), xp)
        gamma = None if aux is None else xp.astype(self.aux_coef_, dtype).T
        return class_scores(X_main, aux, W, codes, beta, gamma, xp.astype(self.intercept_, dtype), self.mode, xp)

    def _scale(self):
        """The power of two by which the solvers divided X in fit (1 for older models)."""
        return getattr(self, "_data_scale", 1.0)

    def _encode(self, X_main, W, xp):
        """Codes of ``X_main / scale`` (see :meth:`_scale`)."""
        return encode(X_main, W, xp, nonnegative=self.nonnegative, max_iter=self.transform_max_iter,
                      scale=self._scale())

    def _full_scores(self, X, X_aux, method):
        """Scores of all classes, the baseline's being 0."""
        scores = self._scores(X, X_aux, method)
        xp = get_namespace(scores)
        zeros = xp.zeros((scores.shape[0], 1), dtype=scores.dtype, device=device_of(scores))
        return xp.concat([zeros, scores], axis=1)

    def decision_function(self, X, X_aux=None):
        """Class scores against the baseline class ``classes_[0]``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.
        X_aux : array-like of shape (n_samples, n_aux), default=None
            Auxiliary covariates, as in fit.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            For two classes the score of ``classes_[1]``; otherwise one column per class,
            the baseline's column being 0.
        """
        check_is_fitted(self)
        if len(self.classes_) == 2:
            return self._scores(X, X_aux, "decision_function")[:, 0]
        return self._full_scores(X, X_aux, "decision_function")

    def predict_proba(self, X, X_aux=None):
        """Class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.
        X_aux : array-like of shape (n_samples, n_aux), default=None
            Auxiliary covariates, as in fit.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_``.
        """
        scores = self._scores(X, X_aux, "predict_proba")
        return full_probabilities(scores, get_namespace(scores))

    def predict_log_proba(self, X, X_aux=None):
        """Logarithm of the class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.
        X_aux : array-like of shape (n_samples, n_aux), default=None
            Auxiliary covariates, as in fit.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities in the order of ``classes_``.
        """
        full = self._full_scores(X, X_aux, "predict_log_proba")
        xp = get_namespace(full)
        shift = xp.max(full, axis=1, keepdims=True)
        return full - shift - xp.log(xp.sum(xp.exp(full - shift), axis=1, keepdims=True))

    def predict(self, X, X_aux=None):
        """Predicted class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.
        X_aux : array-like of shape (n_samples, n_aux), default=None
            Auxiliary covariates, as in fit.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        full = self._full_scores(X, X_aux, "predict")
        xp = get_namespace(full)
        best = xp.argmax(full, axis=1)
        if self.classes_.dtype.kind in "biuf" and not is_numpy_namespace(xp):
            return xp.take(xp.asarray(self.classes_, device=device_of(full)), best)
        return self.classes_[to_numpy(best)]

    def score(self, X, y, sample_weight=None, X_aux=None):
        """Mean accuracy on the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        X_aux : array-like of shape (n_samples, n_aux), default=None
            Auxiliary covariates, as in fit.

        Returns
        -------
        score : float
            Accuracy of ``predict(X, X_aux)``.
        """
        predicted = to_numpy(self.predict(X, X_aux=X_aux))
        weights = None if sample_weight is None else to_numpy(sample_weight)
        return float(accuracy_score(to_numpy(y), predicted, sample_weight=weights))

    # -- transformer side ---------------------------------------------------------------------
    def transform(self, X):
        """Encode ``X`` on the dictionary (least squares; nonnegative if ``nonnegative``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples; auxiliary columns are ignored.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_components)
            The codes ``h`` with ``x ~ W h``.
        """
        check_is_fitted(self)
        check_same_namespace(X, self, attribute="components_", method="transform")
        xp = get_namespace(X)
        X = validate_data(self, X, accept_sparse=("csr", "csc"), dtype=(xp.float64, xp.float32), reset=False)
        X_main = self._main(X, xp)
        xp = get_namespace(self.components_)
        codes = self._encode(X_main, xp.astype(self.components_, X_main.dtype).T, xp)
        return times_power_of_two(codes, _exponent(self._scale()), xp)

    def inverse_transform(self, X):
        """Reconstruct the main features from codes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_main_features)
            ``codes @ components_``.
        """
        check_is_fitted(self)
        check_same_namespace(X, self, attribute="components_", method="inverse_transform")
        xp = get_namespace(X)
        codes = check_array(X, dtype=(xp.float64, xp.float32))
        return codes @ xp.astype(self.components_, codes.dtype)

    @property
    def _n_features_out(self):
        return self.n_components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = self.nonnegative
        # nonnegative codes of a nonnegative dictionary cannot represent every point (e.g. the
        # two-feature blobs of the common checks with r = p = 2), so accuracy there is modest
        tags.classifier_tags.poor_score = self.nonnegative
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.array_api_support = True
        return tags


def _exponent(power_of_two):
    return math.frexp(power_of_two)[1] - 1


def _columns(X, indices, xp):
    """Columns ``indices`` of a dense array of any namespace or of a SciPy sparse matrix."""
    if sp.issparse(X):
        return X[:, indices]
    return xp.take(X, xp.asarray(list(indices), device=device_of(X)), axis=1)
