"""The one estimator base for the torch models of this package.

:class:`BaseTorchEstimator` owns everything that is not model specific: input
validation, seeding, devices, the epoch / minibatch loop, early stopping,
learning-rate schedule, progress bar, ``history_``, activation-memory
measurement, and ``save`` / ``load``. A model subclasses it and fills in three
hooks:

``_build_module(self)``
    return the :class:`torch.nn.Module` to train, from fitted attributes such
    as ``input_shape_`` and ``classes_``;
``_train_step(self, X, y)``
    one optimisation step on a minibatch, returning a dict of floats with at
    least ``"loss"`` (the default calls ``_compute_loss`` and does one
    backward + step; local learning overrides it with one backward per module);
``_forward(self, X)``
    the inference forward pass (default: ``self.module_(X)``).

:class:`BaseTorchClassifier` adds labels, ``predict`` / ``predict_proba`` and
cross-entropy.
"""

import copy
import math
import time
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, check_scalar
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    assert_all_finite,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)
from torch.nn import functional as F
from tqdm.auto import tqdm

from ._utils import check_option, decode_params, encode_params, resolve_device, to_numpy
from .memory import SavedTensorMemory, cuda_peak_memory

__all__ = ["BaseTorchEstimator", "BaseTorchClassifier"]

_FORMAT = "sdlearn.neural/1"


class BaseTorchEstimator(BaseEstimator):
    """Base class of the torch estimators: a generic, seeded training loop.

    Not used directly: subclasses implement ``_build_module`` and optionally
    ``_train_step`` / ``_compute_loss`` / ``_forward``.

    Parameters
    ----------
    max_iter : int, default=50
        Maximum number of epochs (passes over the training data).
    batch_size : int, default=128
        Minibatch size (clipped to the number of training samples).
    solver : {"adam", "sgd"}, default="adam"
        Optimizer.
    learning_rate_init : float, default=1e-3
        Initial learning rate.
    learning_rate : {"constant", "cosine"}, default="cosine"
        Schedule over the ``max_iter`` epochs of ``fit``: constant, or cosine
        decay ``0.5 * lr0 * (1 + cos(pi * epoch / max_iter))`` set per epoch.
        ``partial_fit`` always uses ``learning_rate_init``.
    momentum : float, default=0.9
        Momentum of SGD.
    nesterovs_momentum : bool, default=True
        Use Nesterov momentum with SGD.
    weight_decay : float, default=0.0
        L2 penalty (decoupled from the loss, as torch optimizers apply it).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data, stop when the
        validation score has not improved by ``tol`` for ``n_iter_no_change``
        epochs, and keep the best weights.
    validation_fraction : float, default=0.1
        Share of training data held out for early stopping.
    n_iter_no_change : int, default=10
        Epochs without improvement before stopping.
    tol : float, default=1e-4
        Minimum improvement of the training loss (or of the validation score
        with early stopping) that counts.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation and minibatch order. Pass an int for
        reproducible results (on CPU, identical predictions).
    verbose : int, default=0
        0: silent; 1: a tqdm progress bar over epochs with the loss.
    warm_start : bool, default=False
        Reuse the trained module of the previous ``fit`` as the starting point.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to train; "auto" picks CUDA when available.
    input_shape : tuple of int or None, default=None
        Shape of one sample, ``(C, H, W)`` or ``(H, W)``, used to unflatten
        2-D input ``X`` of shape (n_samples, C*H*W). With None, 2-D input is
        read as C=n_features channels of a 1x1 image.
    """

    def __init__(
        self,
        *,
        max_iter=50,
        batch_size=128,
        solver="adam",
        learning_rate_init=1e-3,
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
        input_shape=None,
    ):
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
        self.input_shape = input_shape

    # ------------------------------------------------------------------ hooks
    def _build_module(self):
        """Return the module to train (uses fitted attributes only)."""
        raise NotImplementedError

    def _compute_loss(self, X, y):
        """Loss of a minibatch (tensors on ``device_``) for the default step."""
        raise NotImplementedError

    def _train_step(self, X, y):
        """One optimisation step; returns a dict of floats with ``"loss"``."""
        self.optimizer_.zero_grad(set_to_none=True)
        loss = self._compute_loss(X, y)
        loss.backward()
        self.optimizer_.step()
        return {"loss": float(loss.detach())}

    def _forward(self, X):
        """Inference forward pass for a minibatch on ``device_``."""
        return self.module_(X)

    def _on_train_data(self, X, y):
        """Called with the (NumPy) training data once the module is built."""

    def _validation_score(self, outputs, y):
        """Score of validation outputs (higher is better), for early stopping."""
        raise NotImplementedError

    def _check_targets(self, y, reset, classes=None):
        """Validate and encode ``y`` into a NumPy array the loss accepts."""
        return np.asarray(y)

    def _target_dtype(self):
        return torch.float32

    # ------------------------------------------------------------ parameters
    def _check_params(self):
        """Validate the parameters of the base; subclasses extend it."""
        check_scalar(self.max_iter, "max_iter", int, min_val=1)
        check_scalar(self.batch_size, "batch_size", int, min_val=1)
        check_option("solver", self.solver, ("adam", "sgd"))
        check_scalar(self.learning_rate_init, "learning_rate_init", float, min_val=0,
                     include_boundaries="neither")
        check_option("learning_rate", self.learning_rate, ("constant", "cosine"))
        check_scalar(self.momentum, "momentum", float, min_val=0, max_val=1)
        check_scalar(self.weight_decay, "weight_decay", float, min_val=0)
        check_scalar(self.validation_fraction, "validation_fraction", float, min_val=0,
                     max_val=1, include_boundaries="neither")
        check_scalar(self.n_iter_no_change, "n_iter_no_change", int, min_val=1)
        check_scalar(self.tol, "tol", float, min_val=0)
        resolve_device(self.device)
        if self.input_shape is not None:
            shape = tuple(self.input_shape) if isinstance(self.input_shape, (tuple, list)) else ()
            if len(shape) not in (2, 3) or not all(isinstance(s, int) and s > 0 for s in shape):
                raise ValueError(
                    "input_shape must be None or a tuple (C, H, W) or (H, W) of positive "
                    f"ints; got {self.input_shape!r}."
                )

    # ----------------------------------------------------------------- inputs
    def _validate(self, X, y=None, *, reset, requires_y=False):
        """Validate X (and y), returning float32 images (n, C, H, W) and targets."""
        X, y = to_numpy(X), to_numpy(y)
        if requires_y and y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        X = validate_data(self, X, allow_nd=True, dtype=[np.float64, np.float32], reset=reset)
        if y is not None:
            y = self._validate_y(y)
            check_consistent_length(X, y)
        return self._to_images(X, reset=reset), y

    def _validate_y(self, y):
        """Check the shape and values of ``y``: one finite target per sample.

        Models with structured targets (segmentation masks, sequences)
        override this to accept their shape.
        """
        y = column_or_1d(y, warn=True)
        if y.dtype.kind in "fc":
            assert_all_finite(y, input_name="y")
        return y

    def _to_images(self, X, *, reset):
        n = X.shape[0]
        if X.ndim == 2:
            if self.input_shape is None:
                shape = (X.shape[1], 1, 1)
            else:
                shape = tuple(self.input_shape)
                shape = (1, *shape) if len(shape) == 2 else shape
                if math.prod(shape) != X.shape[1]:
                    raise ValueError(
                        f"X has {X.shape[1]} features per sample, which cannot be reshaped "
                        f"to input_shape={tuple(self.input_shape)}; pass images of shape "
                        "(n, C, H, W) or fix input_shape."
                    )
            X = X.reshape(n, *shape)
        elif X.ndim == 3:
            X = X[:, None]
        elif X.ndim != 4:
            raise ValueError(
                f"X must be images of shape (n, C, H, W) or (n, H, W), or flat (n, features); "
                f"got an array with {X.ndim} dimensions and shape {X.shape}."
            )
        if reset:
            self.input_shape_ = tuple(int(s) for s in X.shape[1:])
        elif tuple(X.shape[1:]) != self.input_shape_:
            raise ValueError(
                f"X has samples of shape {tuple(X.shape[1:])}, but {type(self).__name__} was "
                f"fitted on samples of shape {self.input_shape_}."
            )
        return np.asarray(X, dtype=np.float32)

    # ------------------------------------------------------------------- fit
    def fit(self, X, y):
        """Train the model on images ``X`` and targets ``y``.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, C, H, W), (n_samples, H, W) or (n_samples, n_features)
            Training images (flat rows are reshaped with ``input_shape``).
        y : array-like or torch.Tensor of shape (n_samples,)
            Targets.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._check_params()
        resume = self.warm_start and hasattr(self, "module_")
        X, y = self._validate(X, y, reset=not resume, requires_y=True)
        y = self._check_targets(y, reset=not resume)
        return self._fit(X, y, resume=resume, n_epochs=self.max_iter, incremental=False)

    def partial_fit(self, X, y, classes=None):
        """Run one epoch over ``X, y``, starting from the current weights.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, C, H, W), (n_samples, H, W) or (n_samples, n_features)
            Training images.
        y : array-like or torch.Tensor of shape (n_samples,)
            Targets.
        classes : array-like of shape (n_classes,), default=None
            All labels that will ever appear (classifiers, first call only;
            default: the labels of ``y``).

        Returns
        -------
        self : object
            The updated estimator.
        """
        first = not hasattr(self, "module_")
        if first:
            self._check_params()
        X, y = self._validate(X, y, reset=first, requires_y=True)
        y = self._check_targets(y, reset=first, classes=classes)
        return self._fit(X, y, resume=not first, n_epochs=1, incremental=True)

    def _init_state(self, X, y):
        rng = check_random_state(self.random_state)
        self.device_ = resolve_device(self.device)
        torch.manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        self.module_ = self._build_module().to(self.device_)
        self._on_train_data(X, y)
        self.optimizer_ = self._build_optimizer()
        self._shuffle_rng = np.random.RandomState(rng.randint(np.iinfo(np.int32).max))
        self.history_ = []
        self.loss_curve_ = []
        self.peak_cuda_memory_bytes_ = None
        self.n_iter_ = 0
        self.best_loss_ = np.inf
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = -np.inf if self.early_stopping else None

    def _build_optimizer(self):
        params = [p for p in self.module_.parameters() if p.requires_grad]
        if self.solver == "sgd":
            return torch.optim.SGD(
                params,
                lr=self.learning_rate_init,
                momentum=self.momentum,
                nesterov=self.nesterovs_momentum and self.momentum > 0,
                weight_decay=self.weight_decay,
            )
        return torch.optim.Adam(params, lr=self.learning_rate_init, weight_decay=self.weight_decay)

    def _split_validation(self, X, y):
        n_val = int(round(self.validation_fraction * len(X)))
        if n_val < 2 or len(X) - n_val < 2:
            raise ValueError(
                f"early_stopping with validation_fraction={self.validation_fraction} leaves "
                f"{n_val} validation and {len(X) - n_val} training samples out of {len(X)}; "
                "use more data, another validation_fraction, or early_stopping=False."
            )
        seed = self._shuffle_rng.randint(np.iinfo(np.int32).max)
        stratify = y if y.ndim == 1 and np.issubdtype(y.dtype, np.integer) else None
        try:
            return train_test_split(X, y, test_size=n_val, random_state=seed, stratify=stratify)
        except ValueError:  # a class too small to stratify
            return train_test_split(X, y, test_size=n_val, random_state=seed)

    def _batches(self, n):
        bs = min(self.batch_size, n)
        order = self._shuffle_rng.permutation(n)
        cuts = list(range(0, n, bs))
        # a last batch of one sample breaks batch norm in training mode: merge it
        if len(cuts) > 1 and n - cuts[-1] == 1:
            cuts.pop()
        return [order[a:b] for a, b in zip(cuts, cuts[1:] + [n])]

    def _tensor(self, a, dtype):
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device_, dtype)

    def _fit(self, X, y, *, resume, n_epochs, incremental):
        if len(X) < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 samples to train (batch norm); "
                f"got n_samples={len(X)}."
            )
        device = self.device_ if resume else resolve_device(self.device)
        # seeding happens inside a forked RNG so the caller's torch RNG is untouched
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            if resume:
                torch.set_rng_state(self._torch_rng_state)
                if self.optimizer_ is None:
                    self.optimizer_ = self._build_optimizer()
            else:
                self._init_state(X, y)
            X_val = y_val = None
            if self.early_stopping and not incremental:
                X, X_val, y, y_val = self._split_validation(X, y)
            self._run_epochs(X, y, X_val, y_val, n_epochs, incremental)
            self._torch_rng_state = torch.get_rng_state()
        return self

    def _set_lr(self, epoch, n_epochs, incremental):
        lr = self.learning_rate_init
        if self.learning_rate == "cosine" and not incremental:
            lr = 0.5 * lr * (1.0 + math.cos(math.pi * epoch / n_epochs))
        for group in self.optimizer_.param_groups:
            group["lr"] = lr
        return lr

    def _run_epochs(self, X, y, X_val, y_val, n_epochs, incremental):
        # activation memory is measured on the first step of every fit call
        self._pending_saved = True
        self._pending_cuda = self.device_.type == "cuda"
        best_state, no_improve, converged = None, 0, False
        bar = tqdm(range(n_epochs), disable=not self.verbose, desc=type(self).__name__,
                   leave=False)
        for epoch in bar:
            lr = self._set_lr(epoch, n_epochs, incremental)
            start = time.perf_counter()
            stats = self._run_epoch(X, y)
            record = {"epoch": self.n_iter_ + 1, "lr": lr, **stats,
                      "time": time.perf_counter() - start}
            self.n_iter_ += 1
            self.loss_curve_.append(stats["loss"])
            if X_val is not None:
                score = self._validation_score(self._predict_outputs(X_val), y_val)
                record["validation_score"] = score
                self.validation_scores_.append(score)
                if score > self.best_validation_score_ + self.tol:
                    self.best_validation_score_, no_improve = score, 0
                    best_state = copy.deepcopy(self.module_.state_dict())
                else:
                    no_improve += 1
            else:
                if stats["loss"] < self.best_loss_ - self.tol:
                    no_improve = 0
                else:
                    no_improve += 1
            self.best_loss_ = min(self.best_loss_, stats["loss"])
            self.history_.append(record)
            bar.set_postfix(loss=f"{stats['loss']:.4f}")
            if not incremental and no_improve >= self.n_iter_no_change:
                converged = True
                break
        bar.close()
        if best_state is not None:
            self.module_.load_state_dict(best_state)
        if not incremental and not converged:
            warnings.warn(
                f"{type(self).__name__}: maximum iterations ({n_epochs}) reached and the "
                "optimisation hasn't converged yet (training loss still improving by more "
                "than tol); increase max_iter if accuracy matters.",
                ConvergenceWarning,
            )

    def _run_epoch(self, X, y):
        self.module_.train()
        totals, seen = {}, 0
        for step, idx in enumerate(self._batches(len(X))):
            xb = self._tensor(X[idx], torch.float32)
            yb = self._tensor(y[idx], self._target_dtype())
            if self._pending_saved:
                with SavedTensorMemory(self.module_.parameters()) as mem:
                    stats = self._train_step(xb, yb)
                self.peak_activation_bytes_ = int(mem.peak_bytes)
                self._pending_saved = False
            elif self._pending_cuda:
                # measured after a warm-up step so optimizer state already exists
                stats = {}
                self.peak_cuda_memory_bytes_ = cuda_peak_memory(
                    lambda: stats.update(self._train_step(xb, yb)), self.device_
                )
                self._pending_cuda = False
            else:
                stats = self._train_step(xb, yb)
            n = len(idx)
            seen += n
            for key, value in stats.items():
                totals[key] = totals.get(key, 0.0) + value * n
        return {key: value / seen for key, value in totals.items()}

    # --------------------------------------------------------------- predict
    def _predict_outputs(self, X):
        """Raw outputs for validated NumPy images, concatenated on the CPU."""
        self.module_.eval()
        bs = max(self.batch_size, 256)
        outs = []
        with torch.no_grad():
            for start in range(0, len(X), bs):
                xb = self._tensor(X[start : start + bs], torch.float32)
                outs.append(self._forward(xb).float().cpu())
        return torch.cat(outs)

    # ----------------------------------------------------------- save / load
    def _fitted_metadata(self):
        """JSON-able fitted attributes needed to rebuild the module."""
        meta = {
            "input_shape_": list(self.input_shape_),
            "n_features_in_": int(self.n_features_in_),
            "n_iter_": int(self.n_iter_),
            "history_": self.history_,
            "loss_curve_": [float(v) for v in self.loss_curve_],
            "peak_activation_bytes_": getattr(self, "peak_activation_bytes_", None),
            "peak_cuda_memory_bytes_": getattr(self, "peak_cuda_memory_bytes_", None),
        }
        if hasattr(self, "feature_names_in_"):
            meta["feature_names_in_"] = [str(f) for f in self.feature_names_in_]
        return meta

    def _restore_metadata(self, meta):
        self.input_shape_ = tuple(meta["input_shape_"])
        self.n_features_in_ = meta["n_features_in_"]
        self.n_iter_ = meta["n_iter_"]
        self.history_ = meta["history_"]
        self.loss_curve_ = meta["loss_curve_"]
        self.peak_activation_bytes_ = meta["peak_activation_bytes_"]
        self.peak_cuda_memory_bytes_ = meta["peak_cuda_memory_bytes_"]
        if "feature_names_in_" in meta:
            self.feature_names_in_ = np.asarray(meta["feature_names_in_"], dtype=object)

    def save(self, path):
        """Write the fitted model to ``path``: weights + JSON parameters, no code.

        Parameters
        ----------
        path : str or path-like
            Destination file (conventionally ``*.pt``).

        Raises
        ------
        TypeError
            If a parameter is not plain data (then pickle the estimator).
        """
        check_is_fitted(self, "module_")
        payload = {
            "format": _FORMAT,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "params": encode_params(self.get_params(deep=False)),
            "fitted": encode_params(self._fitted_metadata()),
            "state_dict": {k: v.detach().cpu() for k, v in self.module_.state_dict().items()},
        }
        torch.save(payload, path)

    @classmethod
    def load(cls, path, device=None):
        """Load a model written by :meth:`save` (``torch.load(weights_only=True)``).

        Parameters
        ----------
        path : str or path-like
            File written by :meth:`save`.
        device : str or None, default=None
            Override the saved ``device`` parameter (e.g. ``"cpu"`` to load a
            model trained on a GPU).

        Returns
        -------
        estimator : BaseTorchEstimator
            A fitted estimator of class ``cls``; training can resume with
            ``partial_fit`` or ``warm_start`` (optimizer state starts afresh).
        """
        payload = torch.load(path, map_location="cpu", weights_only=True)
        name = f"{cls.__module__}.{cls.__qualname__}"
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise ValueError(f"{path!r} was not written by {cls.__name__}.save().")
        if payload["class"] != name:
            raise ValueError(
                f"{path!r} holds a {payload['class']}; load it with that class, not {name}."
            )
        params = decode_params(payload["params"])
        if device is not None:
            params["device"] = device
        est = cls(**params)
        est._check_params()
        est._restore_metadata(decode_params(payload["fitted"]))
        est.device_ = resolve_device(est.device)
        est.module_ = est._build_module()
        est.module_.load_state_dict(payload["state_dict"])
        est.module_.to(est.device_)
        est.optimizer_ = None
        seed = check_random_state(est.random_state).randint(np.iinfo(np.int32).max)
        est._shuffle_rng = np.random.RandomState(seed)
        est._torch_rng_state = torch.get_rng_state()
        est.best_loss_ = min(est.loss_curve_, default=np.inf)
        return est

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


class BaseTorchClassifier(ClassifierMixin, BaseTorchEstimator):
    """Base of torch classifiers: labels, cross-entropy, ``predict_proba``.

    The module built by ``_build_module`` must return logits of shape
    (n, n_classes) from ``_forward``. The parameters are those of
    :class:`BaseTorchEstimator` (appended below).
    """

    def _check_targets(self, y, reset, classes=None):
        check_classification_targets(y)
        if reset:
            labels = np.unique(y) if classes is None else np.unique(to_numpy(classes))
            if len(labels) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes; "
                    f"got 1 class ({labels[0]!r})."
                )
            self.classes_ = labels
        if not np.isin(y, self.classes_).all():
            unknown = np.setdiff1d(np.unique(y), self.classes_)
            raise ValueError(
                f"y contains labels {unknown.tolist()} not seen before; pass every label "
                "with `classes=` on the first call to partial_fit."
            )
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _target_dtype(self):
        return torch.int64

    def _compute_loss(self, X, y):
        return F.cross_entropy(self.module_(X), y)

    def _validation_score(self, outputs, y):
        return float((outputs.argmax(1).numpy() == y).mean())

    def predict_proba(self, X):
        """Class probabilities (softmax of the logits).

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, C, H, W), (n_samples, H, W) or (n_samples, n_features)
            Images.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_``.
        """
        check_is_fitted(self, "module_")
        X, _ = self._validate(X, reset=False)
        logits = self._predict_outputs(X).double()
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, X):
        """Predicted labels.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, C, H, W), (n_samples, H, W) or (n_samples, n_features)
            Images.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        check_is_fitted(self, "module_")
        X, _ = self._validate(X, reset=False)
        return self.classes_[self._predict_outputs(X).argmax(1).numpy()]

    def _fitted_metadata(self):
        meta = super()._fitted_metadata()
        meta["classes_"] = self.classes_.tolist()
        meta["classes_dtype"] = self.classes_.dtype.str if self.classes_.dtype != object else "O"
        return meta

    def _restore_metadata(self, meta):
        super()._restore_metadata(meta)
        self.classes_ = np.asarray(meta["classes_"], dtype=np.dtype(meta["classes_dtype"]))


# same parameters as the base: reuse its section rather than repeat it
BaseTorchClassifier.__doc__ += "\n" + BaseTorchEstimator.__doc__[
    BaseTorchEstimator.__doc__.index("    Parameters\n") :
]
