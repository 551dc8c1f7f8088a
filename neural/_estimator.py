"""The estimator face of the neural models: parameters, validation, fit, save / load, tags.

:class:`BaseTorchEstimator` is what scikit-learn sees; the training loop itself
is :class:`neural._trainer.Trainer`. ``fit`` and ``partial_fit`` are written
here once; a model supplies only its own parts through the hooks listed in
the class docstring.
"""

import math
import os
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import metadata_routing
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    assert_all_finite,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)
from torch.nn import functional as F

from ._data import (
    ArrayDataset,
    ItemDataset,
    check_map_dataset,
    is_dataset,
    iter_items,
    make_loader,
    sequential_batches,
    to_device,
)
from ._distributed import is_secondary_process
from ._docs import fill_docstring
from ._precision import autocast
from ._trainer import Phase, Trainer, TrainingRNG, build_optimizer
from ._utils import decode_params, encode_params, resolve_device, to_numpy
from ._validation import (
    CallbackList,
    DeviceSpec,
    Finite,
    OptimizerSpec,
    TupleOf,
    check_float32_range,
    validate_params,
)
from .callbacks import EarlyStopping, LRScheduler, ProgressBar

__all__ = ["BaseTorchEstimator", "BaseTorchClassifier", "ImageInputMixin", "store_params"]

_FORMAT = "sdlearn.neural/2"
_READABLE_FORMATS = ("sdlearn.neural/1", _FORMAT)
_PAYLOAD_KEYS = ("format", "class", "params", "fitted", "state_dict")
_TRAINING_KEYS = ("optimizer", "rng", "position", "split_seed", "callbacks")


def store_params(estimator, values):
    """Store ``__init__``'s arguments as attributes, unchanged (scikit-learn's convention).

    Parameters
    ----------
    estimator : BaseTorchEstimator
        The estimator being constructed.
    values : dict
        ``locals()`` of its ``__init__``.
    """
    for name, value in values.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


def _unpack_item(item, index):
    if not (isinstance(item, (tuple, list)) and len(item) == 2):
        raise ValueError(
            f"item {index} of the dataset is a {type(item).__name__}; the estimators train on "
            "datasets whose items are (x, y) pairs."
        )
    return item[0], item[1]


def _reject_dataset(X):
    if is_dataset(X):
        raise TypeError("prediction takes arrays (or lists) in memory, not a Dataset; predict "
                        "on batches of items, e.g. np.stack([ds[i][0] for i in batch]).")


def _file_error(path, problem):
    return ValueError(f"cannot load {os.fspath(path)!r}: {problem}")


def read_model_file(path, cls):
    """Read and check a file written by ``save``; every problem is one ``ValueError``.

    Parameters
    ----------
    path : str or path-like
        The file.
    cls : type
        The estimator class that should have written it.

    Returns
    -------
    payload : dict
        ``params`` and ``fitted`` decoded, ``state_dict``, and ``training``
        (None when the file holds no resumable training state).

    Raises
    ------
    ValueError
        Naming the file and the problem: missing, empty, not a readable
        model file (truncated, corrupted, random bytes, code that
        ``weights_only`` refuses), missing keys, another class, non-finite
        weights.
    """
    if not os.path.exists(path):
        raise _file_error(path, "no such file")
    if os.path.isdir(path):
        raise _file_error(path, "it is a folder, not a file")
    if os.path.getsize(path) == 0:
        raise _file_error(path, "the file is empty")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for truncated / foreign bytes
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise _file_error(
            path, "not a readable model file: truncated, corrupted, or not written by save() "
            f"({type(exc).__name__}: {reason})") from exc
    if not isinstance(payload, dict) or payload.get("format") not in _READABLE_FORMATS:
        raise _file_error(path, f"it was not written by {cls.__name__}.save()")
    missing = [k for k in _PAYLOAD_KEYS if k not in payload]
    if missing:
        raise _file_error(path, f"it lacks the entries {missing}")
    name = f"{cls.__module__}.{cls.__qualname__}"
    if payload["class"] != name:
        raise _file_error(path, f"it holds a {payload['class']}; load it with that class, "
                                f"not {name}")
    state = payload["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise _file_error(path, "its weights are not a dict of tensors")
    for key, value in state.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise _file_error(path, f"it holds non-finite weights (NaN or infinity) in {key!r}")
    try:
        params, fitted = decode_params(payload["params"]), decode_params(payload["fitted"])
    except (TypeError, ValueError) as exc:
        raise _file_error(path, f"its parameters are not valid JSON ({exc})") from exc
    training = payload.get("training")
    if training is not None and (not isinstance(training, dict)
                                 or any(k not in training for k in _TRAINING_KEYS)):
        raise _file_error(path, f"its training state lacks entries (expected {_TRAINING_KEYS})")
    return {"params": params, "fitted": fitted, "state_dict": state, "training": training}


def _declared(cls, method):
    """Names that ``cls`` declares in its ``__metadata_request__<method>`` attributes."""
    names = {}
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            if attr.endswith(f"__metadata_request__{method}"):
                names.update(value)
    return [k for k, v in names.items() if v is not metadata_routing.UNUSED]


class BaseTorchEstimator(BaseEstimator):
    """Base class of the torch estimators: parameters, validation, ``fit``, ``save`` / ``load``.

    ``fit`` and ``partial_fit`` are written here once and hand the training to
    :class:`neural._trainer.Trainer`, the one loop of every estimator. A model
    subclasses this class (or :class:`BaseTorchClassifier`), declares its
    parameters in ``__init__`` and ``_parameter_constraints``, and fills in
    the hooks it needs:

    ``_build_module(self)``
        Return the :class:`torch.nn.Module` to train, from fitted attributes
        (``input_shape_``, ``classes_``, ...). Required.
    ``_get_dataset(self, X, y, *, reset, classes=None, **fit_params)``
        Data preparation: validate ``X``, ``y`` and the fit parameters, set
        the data-dependent fitted attributes when ``reset``, and return a
        map-style :class:`torch.utils.data.Dataset` of ``(x, y)`` items
        (tensors or dicts of tensors once batched). The default takes arrays
        (``_validate``, ``_check_targets``) or a user's dataset of
        ``(x, y)`` pairs (``_convert_item`` per item).
    ``_init_module(self, dataset)``
        Called once a fresh module exists (data-dependent buffers).
    ``_training_phases(self)``
        The :class:`~neural._trainer.Phase` list of ``fit`` (default: one
        phase of ``max_iter`` epochs).
    ``_train_losses(self, X, y, phase)``
        Yield ``(loss, stats)`` for a minibatch on the device. The trainer
        backpropagates each loss before asking for the next one and steps
        the optimizer once they are all done; code after a ``yield`` runs
        after that loss's backward. ``stats`` (floats or 0-d tensors) go to
        ``history_`` averaged over the epoch; without a ``"loss"`` entry the
        sum of the losses is recorded. The default yields
        ``_compute_loss(X, y)``.
    ``_on_train_begin(self, trainer)``, ``_on_epoch_begin(self, trainer)``, ``_on_epoch_end(self, trainer, logs)``
        Per-fit and per-epoch work of the model (P2C samples its pairs here).
    ``_forward(self, X)``
        Inference forward for prediction and validation (default ``module_(X)``).
    ``_validation_score(self, outputs, y)``
        Score of validation outputs, higher is better.
    ``_optimizer_params(self)``
        Parameters (or groups) the optimizer updates.
    ``_distributed_units(self)``
        Under torch.distributed, the modules (or lists of modules) that
        :class:`~torch.nn.parallel.DistributedDataParallel` wraps, one per
        loss that ``_train_losses`` yields, in order; together they hold every
        trained parameter once (default: ``[module_]``, one loss).
    ``_fitted_metadata(self)`` / ``_restore_metadata(self, meta)``
        JSON-able fitted attributes that ``save`` / ``load`` carry.

    Model-specific fit parameters (P2C's ``preferences``) are declared with
    ``__metadata_request__fit = {"name": None}``, which also opts them into
    scikit-learn's metadata routing. Every training run calls callbacks
    (:mod:`neural.callbacks`); ``save`` writes a checkpoint that
    ``fit(..., resume_from=path)`` continues bit for bit.

    Parameters
    ----------
    {training_params}

    Attributes
    ----------
    {training_attributes}
    """

    _parameter_constraints = {
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "solver": [OptimizerSpec()],
        "optimizer_kwargs": [dict, None],
        "learning_rate_init": [Finite(Real, 0, None, closed="neither")],
        "learning_rate": [StrOptions({"constant", "cosine"})],
        "momentum": [Finite(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "weight_decay": [Finite(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Finite(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Finite(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "device": [DeviceSpec()],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "precision": [StrOptions({"32", "bf16", "16"})],
        "distributed": [StrOptions({"auto", "off"})],
        "callbacks": [CallbackList(), None],
    }

    # resume_from / validation_data / classes are options of the call, not routed metadata
    __metadata_request__fit = {"resume_from": metadata_routing.UNUSED,
                               "validation_data": metadata_routing.UNUSED}
    __metadata_request__partial_fit = {"classes": metadata_routing.UNUSED}

    _history_doc = ""

    def __init__(
        self,
        *,
        max_iter=50,
        batch_size=128,
        solver="adam",
        optimizer_kwargs=None,
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
        num_workers=0,
        precision="32",
        distributed="auto",
        callbacks=None,
    ):
        store_params(self, locals())

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__doc__" in vars(cls):
            cls.__doc__ = fill_docstring(cls)

    # ------------------------------------------------------------ parameters
    def _check_params(self):
        """Validate every parameter (``_parameter_constraints``), then their relations."""
        validate_params(self)
        resolve_device(self.device)
        for key, value in (self.optimizer_kwargs or {}).items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"optimizer_kwargs[{key!r}] must be finite; got {value!r}.")

    # ------------------------------------------------------------------- fit
    def fit(self, X, y=None, *, validation_data=None, resume_from=None, **fit_params):
        """Train the model on ``X, y`` or on a dataset of ``(x, y)`` pairs.

        Parameters
        ----------
        X : array-like, list or torch.utils.data.Dataset
            Training input in the model's format (see the class docstring),
            or a map-style dataset whose items are ``(x, y)`` pairs (then
            ``y`` must be None); a dataset gives the same model as the same
            data in memory.
        y : array-like or None, default=None
            Targets, required with array input.
        validation_data : tuple (X_val, y_val), torch.utils.data.Dataset or None, default=None
            Data scored after every epoch (``validation_score`` in
            ``history_``); with ``early_stopping`` it replaces the held-out
            ``validation_fraction``.
        resume_from : str, path-like or None, default=None
            A file written by ``save`` (or a :class:`~neural.callbacks.Checkpoint`)
            during a fit with the same parameters and data: training continues
            at the epoch where it was written, on the same schedule, with the
            same random streams.
        **fit_params : dict
            Model-specific fit parameters (see the class docstring).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._train(X, y, fit_params, incremental=False, validation_data=validation_data,
                           resume_from=resume_from)

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Run one epoch over ``X, y`` (or a dataset), starting from the current weights.

        Parameters
        ----------
        X : array-like, list or torch.utils.data.Dataset
            As in :meth:`fit`.
        y : array-like or None, default=None
            As in :meth:`fit`.
        classes : array-like of shape (n_classes,) or None, default=None
            Classifiers, first call: every label that will ever appear
            (default: the labels of ``y``).
        **fit_params : dict
            Model-specific fit parameters, as in :meth:`fit`.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._train(X, y, fit_params, incremental=True, classes=classes)

    def _train(self, X, y, fit_params, *, incremental, classes=None, validation_data=None,
               resume_from=None):
        method = "partial_fit" if incremental else "fit"
        unknown = sorted(set(fit_params) - set(_declared(type(self), method)))
        if unknown:
            accepted = _declared(type(self), method)
            raise TypeError(f"{type(self).__name__}.{method}() got unexpected keyword arguments "
                            f"{unknown}; it accepts {accepted or 'none'} besides X and y.")
        if classes is not None and not isinstance(self, ClassifierMixin):
            raise ValueError(f"classes applies to classifiers; {type(self).__name__} takes none.")
        fitted = hasattr(self, "module_")
        if not (incremental and fitted):
            self._check_params()
        checkpoint = None
        if resume_from is not None:
            payload = read_model_file(resume_from, type(self))
            if payload["training"] is None:
                raise ValueError(
                    f"cannot resume from {os.fspath(resume_from)!r}: it holds no training state "
                    "(written in the middle of an epoch, or by an older version); load() it and "
                    "continue with partial_fit or warm_start instead.")
            self._restore(payload, resume_from)
            checkpoint = payload["training"]
        continuing = checkpoint is not None or (fitted and (incremental or self.warm_start))
        dataset = self._get_dataset(X, y, reset=not continuing, classes=classes, **fit_params)
        validation = None
        if validation_data is not None and not incremental:
            validation = self._validation_dataset(validation_data)
        if incremental:
            phases = [Phase("partial_fit", 1, scheduled=False, check_convergence=False)]
        else:
            phases = self._training_phases()
        validating = validation is not None or (self.early_stopping and not incremental)
        trainer = Trainer(
            self, dataset, phases=phases,
            callbacks=self._callbacks(incremental, validating),
            validation=validation,
            split=self.early_stopping and not incremental and validation is None,
            checkpoint=checkpoint,
        )
        trainer.run(fresh=not continuing)
        return self

    def _validation_dataset(self, validation_data):
        if is_dataset(validation_data):
            return self._get_dataset(validation_data, None, reset=False)
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError("validation_data must be a pair (X_val, y_val) or a dataset of "
                             f"(x, y) pairs; got {type(validation_data).__name__}.")
        return self._get_dataset(validation_data[0], validation_data[1], reset=False)

    def _callbacks(self, incremental, validating):
        """The built-in callbacks of the parameters, then the user's."""
        user = list(self.callbacks or [])
        built_in = []
        if not incremental:
            if self.learning_rate == "cosine" and not any(isinstance(c, LRScheduler) for c in user):
                built_in.append(LRScheduler("CosineAnnealingLR"))
            monitor = "validation_score" if self.early_stopping else "loss"
            built_in.append(EarlyStopping(monitor, patience=self.n_iter_no_change, tol=self.tol,
                                          restore_best=bool(self.early_stopping)))
        if self.verbose:
            built_in.append(ProgressBar())
        return built_in + user

    # ----------------------------------------------------------------- hooks
    def _build_module(self):
        """Return the module to train (uses fitted attributes only)."""
        raise NotImplementedError

    def _init_module(self, dataset):
        """Initialise data-dependent parts of a freshly built module (default: nothing)."""

    def _optimizer_params(self):
        """Parameters the optimizer updates (default: every trainable one of ``module_``)."""
        return [p for p in self.module_.parameters() if p.requires_grad]

    def _distributed_units(self):
        """What DDP wraps, one unit per loss of ``_train_losses`` (default: the whole module)."""
        return [self.module_]

    def _training_phases(self):
        """The phases of ``fit`` (default: one phase of ``max_iter`` epochs)."""
        return [Phase("train", self.max_iter)]

    def _compute_loss(self, X, y):
        """Loss of a minibatch (tensors on ``device_``) for the default ``_train_losses``."""
        raise NotImplementedError

    def _train_losses(self, X, y, phase):
        """Yield ``(loss, stats)`` pairs of one minibatch (default: one loss)."""
        yield self._compute_loss(X, y), {}

    def _forward(self, X):
        """Inference forward pass for a minibatch on ``device_``."""
        return self.module_(X)

    def _validation_score(self, outputs, y):
        """Score of validation outputs (higher is better)."""
        raise NotImplementedError

    def _on_train_begin(self, trainer):
        """Per-fit work of the model before the first epoch (default: nothing)."""

    def _on_epoch_begin(self, trainer):
        """Per-epoch work of the model before the epoch's minibatches (default: nothing)."""

    def _on_epoch_end(self, trainer, logs):
        """Per-epoch work of the model after the epoch (default: nothing)."""

    # ----------------------------------------------------------------- data
    def _get_dataset(self, X, y, *, reset, classes=None, **fit_params):
        """Training data as a dataset of ``(x, y)`` items (arrays or a user's dataset)."""
        if is_dataset(X):
            if y is not None:
                raise ValueError("pass either a dataset of (x, y) pairs as X with y=None, or "
                                 "arrays X and y; got a dataset and y.")
            return self._items_dataset(X, reset=reset, classes=classes)
        X, y = self._validate(X, y, reset=reset, requires_y=True)
        y = self._check_targets(y, reset=reset, classes=classes)
        return ArrayDataset(X, y)

    def _items_dataset(self, dataset, *, reset, classes):
        """A user's dataset: one pass for shapes and labels, then items converted on read."""
        check_map_dataset(dataset)
        if reset:
            x0, _ = _unpack_item(dataset[0], 0)
            x0 = self._check_item_x(x0, 0)
            self.n_features_in_ = int(x0.shape[0]) if x0.ndim else 1
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            self._to_samples(x0[None], reset=True)
        targets = self._scan_targets(dataset, reset=reset, classes=classes)
        return ItemDataset(dataset, self._convert_item, targets=targets)

    def _scan_targets(self, dataset, *, reset, classes):
        """One pass over the targets: classes (when ``reset``) and 1-D encoded targets."""
        source = getattr(dataset, "targets", None)
        if source is not None and len(source) == len(dataset):
            values = [np.asarray(to_numpy(t)) for t in source]
        else:
            values = [np.asarray(to_numpy(_unpack_item(item, i)[1]))
                      for i, item in enumerate(iter_items(dataset, self.num_workers))]
        if all(v.ndim == 0 for v in values):
            y = self._validate_y(np.stack(values))
            return self._check_targets(y, reset=reset, classes=classes)
        labels = np.unique(np.concatenate([np.unique(v) for v in values]))
        self._check_targets(labels, reset=reset, classes=classes)
        return None

    def _check_item_x(self, x, index):
        """One sample of a user's dataset as a finite NumPy array (float32-safe)."""
        x = np.asarray(to_numpy(x))
        if x.dtype.kind not in "biuf":
            raise ValueError(f"item {index} of the dataset: x must be numeric; got dtype {x.dtype}.")
        if x.dtype.kind != "f":
            x = x.astype(np.float64)
        if not np.isfinite(x).all():
            raise ValueError(f"item {index} of the dataset: x contains NaN or infinity.")
        check_float32_range(x, f"item {index} of the dataset")
        return x

    def _convert_item(self, item, index):
        """Check and encode one ``(x, y)`` item of a user's dataset like array input."""
        x, y = _unpack_item(item, index)
        x = self._to_samples(self._check_item_x(x, index)[None], reset=False)[0]
        y = self._encode_item_target(np.asarray(to_numpy(y)), index)
        return x, y

    def _encode_item_target(self, y, index):
        """Encode one item's target like ``_check_targets`` encodes an array."""
        return self._check_targets(y.reshape(1, *y.shape), reset=False)[0]

    def _validate(self, X, y=None, *, reset, requires_y=False):
        """Validate array input ``X`` (and ``y``), returning float32 samples and raw targets."""
        X, y = to_numpy(X), to_numpy(y)
        if requires_y and y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        X = validate_data(self, X, allow_nd=True, dtype=[np.float64, np.float32], reset=reset)
        check_float32_range(X, "X")
        if y is not None:
            y = self._validate_y(y)
            check_consistent_length(X, y)
        return self._to_samples(X, reset=reset), y

    def _to_samples(self, X, *, reset):
        """Shape validated input into the module's input (default: 2-D feature rows)."""
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {X.shape}.")
        return np.asarray(X, dtype=np.float32)

    def _validate_y(self, y):
        """Check the shape and values of ``y``: one finite target per sample.

        Models with structured targets (segmentation masks, sequences)
        override this to accept their shape.
        """
        y = column_or_1d(y, warn=True)
        if y.dtype.kind in "fc":
            assert_all_finite(y, input_name="y")
        return y

    def _check_targets(self, y, reset, classes=None):
        """Validate and encode ``y`` into a NumPy array the loss accepts."""
        y = np.asarray(y)
        if y.dtype.kind == "f":
            check_float32_range(y, "y")
            return y.astype(np.float32)
        return y

    # -------------------------------------------------------------- predict
    def _infer(self, x, fn=None, batch_size=None):
        """Apply ``fn`` (default :meth:`_forward`) in eval mode to in-memory inputs ``x``.

        Outputs (a tensor or a tuple of tensors per batch) are concatenated on the CPU.
        """
        fn = self._forward if fn is None else fn
        data = ArrayDataset(x)
        batches = sequential_batches(len(data), batch_size or max(self.batch_size, 256))
        self.module_.eval()
        outs = []
        with torch.no_grad():
            for xb, _ in make_loader(data, batches, device=self.device_):
                with autocast(self.precision, self.device_):
                    out = fn(to_device(xb, self.device_))
                outs.append(tuple(o.cpu() for o in out) if isinstance(out, tuple) else out.cpu())
        if isinstance(outs[0], tuple):
            return tuple(torch.cat(parts) for parts in zip(*outs))
        return torch.cat(outs)

    def _predict_outputs(self, x):
        """Raw float outputs for validated in-memory inputs, on the CPU."""
        return self._infer(x, lambda xb: self._forward(xb).float())

    # ---------------------------------------------------------- save / load
    def _fitted_metadata(self):
        """JSON-able fitted attributes needed to rebuild the module and continue training."""
        meta = {
            "n_iter_": int(self.n_iter_),
            "history_": self.history_,
            "loss_curve_": [float(v) for v in self.loss_curve_],
            "best_loss_": float(self.best_loss_),
            "validation_scores_": self.validation_scores_,
            "best_validation_score_": self.best_validation_score_,
            "peak_activation_bytes_": getattr(self, "peak_activation_bytes_", None),
            "peak_cuda_memory_bytes_": getattr(self, "peak_cuda_memory_bytes_", None),
            "peak_memory_bytes_": getattr(self, "peak_memory_bytes_", None),
        }
        if hasattr(self, "n_features_in_"):
            meta["n_features_in_"] = int(self.n_features_in_)
        if hasattr(self, "input_shape_"):
            meta["input_shape_"] = list(self.input_shape_)
        if hasattr(self, "feature_names_in_"):
            meta["feature_names_in_"] = [str(f) for f in self.feature_names_in_]
        return meta

    def _restore_metadata(self, meta):
        """Set the attributes of :meth:`_fitted_metadata`."""
        for key in ("n_iter_", "history_", "loss_curve_", "best_loss_", "validation_scores_",
                    "best_validation_score_", "peak_activation_bytes_",
                    "peak_cuda_memory_bytes_"):
            setattr(self, key, meta[key])
        self.peak_memory_bytes_ = meta.get("peak_memory_bytes_")  # absent from older files
        if "n_features_in_" in meta:
            self.n_features_in_ = meta["n_features_in_"]
        if "input_shape_" in meta:
            self.input_shape_ = tuple(meta["input_shape_"])
        if "feature_names_in_" in meta:
            self.feature_names_in_ = np.asarray(meta["feature_names_in_"], dtype=object)

    def _training_state(self):
        """Optimizer, random streams, position and callback states: None if not resumable."""
        trainer = getattr(self, "_trainer", None)
        snapshot = trainer.snapshot() if trainer is not None else getattr(self, "_last_snapshot",
                                                                          None)
        if snapshot is None or getattr(self, "optimizer_", None) is None:
            return None
        if trainer is not None:
            self._rng.capture_torch(self.device_)
        scaler = (trainer.scaler_state() if trainer is not None
                  else getattr(self, "_grad_scaler_state", None))
        return {"optimizer": self.optimizer_.state_dict(), "rng": self._rng.state_dict(),
                "scaler": scaler, **snapshot}

    def save(self, path):
        """Write the fitted model to ``path``: weights, training state and JSON parameters.

        The file holds the module's weights, the parameters and fitted
        attributes (as JSON), and the training state: optimizer and scheduler
        states, epoch, random streams, so that ``fit(..., resume_from=path)``
        continues the fit bit for bit (on CPU). Called in the middle of an
        epoch it writes no training state. No code is pickled: :meth:`load`
        reads it with ``torch.load(weights_only=True)``. ``callbacks`` are not
        saved (the loaded estimator has ``callbacks=None``). In a distributed
        job (several processes, ``distributed="auto"``) only the process of
        rank 0 writes; the others return at once (call
        ``torch.distributed.barrier()`` before other processes read the file).

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
        if is_secondary_process(self.distributed):
            return
        params = self.get_params(deep=False)
        params["callbacks"] = None
        payload = {
            "format": _FORMAT,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "params": encode_params(params),
            "fitted": encode_params(self._fitted_metadata()),
            "state_dict": {k: v.detach().cpu() for k, v in self.module_.state_dict().items()},
            "training": self._training_state(),
        }
        torch.save(payload, path)

    @classmethod
    def load(cls, path, device=None):
        """Load a model written by :meth:`save` (``torch.load(weights_only=True)``).

        Parameters
        ----------
        path : str or path-like
            File written by :meth:`save` or a :class:`~neural.callbacks.Checkpoint`.
        device : str or None, default=None
            Override the saved ``device`` parameter (e.g. ``"cpu"`` to load a
            model trained on a GPU).

        Returns
        -------
        estimator : BaseTorchEstimator
            A fitted estimator of class ``cls``; ``partial_fit`` and
            ``warm_start`` continue with the saved optimizer state.

        Raises
        ------
        ValueError
            Naming the file and the problem when the file is missing, empty,
            truncated or otherwise unreadable, was written by another class,
            lacks entries, holds non-finite weights, or its weights or
            parameters do not fit the model.
        """
        payload = read_model_file(path, cls)
        params = dict(payload["params"])
        if device is not None:
            params["device"] = device
        try:
            est = cls(**params)
            est._check_params()
        except (TypeError, ValueError) as exc:
            raise _file_error(path, f"its parameters do not fit {cls.__name__}: {exc}") from exc
        est._restore(payload, path)
        return est

    def _restore(self, payload, path):
        """Set fitted attributes, module, optimizer and random streams from a read file."""
        try:
            self._restore_metadata(payload["fitted"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _file_error(path, f"its fitted attributes are incomplete ({exc!r})") from exc
        self.device_ = resolve_device(self.device)
        try:
            module = self._build_module()
            module.load_state_dict(payload["state_dict"])
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise _file_error(path, f"its weights do not fit the model: {exc}") from exc
        self.module_ = module.to(self.device_)
        training = payload["training"]
        self.optimizer_ = None
        self._grad_scaler_state = None if training is None else training.get("scaler")
        if training is None:
            self._rng = TrainingRNG(self.random_state)
            self._rng.torch_state = torch.Generator().manual_seed(self._rng.torch_seed).get_state()
            self._last_snapshot = None
            return
        try:
            self._rng = TrainingRNG.from_state_dict(training["rng"])
            self.optimizer_ = build_optimizer(self, self._optimizer_params())
            self.optimizer_.load_state_dict(training["optimizer"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise _file_error(path, f"its training state does not fit the model: {exc}") from exc
        self._last_snapshot = {k: training[k] for k in ("position", "split_seed", "callbacks")}

    def __getstate__(self):
        state = super().__getstate__() if hasattr(super(), "__getstate__") else dict(self.__dict__)
        state = dict(state)
        state.pop("_trainer", None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = False
        return tags


BaseTorchEstimator.__doc__ = fill_docstring(BaseTorchEstimator)


class BaseTorchClassifier(ClassifierMixin, BaseTorchEstimator):
    """Base of torch classifiers: labels, cross-entropy, ``predict_proba``.

    The module built by ``_build_module`` must return logits of shape
    (n, n_classes) from ``_forward``. The hooks are those of
    :class:`BaseTorchEstimator`.

    Parameters
    ----------
    {training_params}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    {training_attributes}
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

    def _compute_loss(self, X, y):
        return F.cross_entropy(self.module_(X), y)

    def _validation_score(self, outputs, y):
        return float((outputs.argmax(1).numpy() == y).mean())

    def predict_proba(self, X):
        """Class probabilities (softmax of the logits).

        Parameters
        ----------
        X : array-like, list or torch.Tensor
            Input in the model's format (see the class docstring).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_``.
        """
        return torch.softmax(self._logits(X).double(), dim=1).numpy()

    def predict(self, X):
        """Predicted labels.

        Parameters
        ----------
        X : array-like, list or torch.Tensor
            As in :meth:`predict_proba`.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        labels = self._logits(X).argmax(1).numpy()
        return self.classes_[labels]

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of :meth:`predict` on ``X`` against ``y``.

        Parameters
        ----------
        X : array-like, list or torch.Tensor
            As in :meth:`predict_proba`.
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

    def _logits(self, X):
        check_is_fitted(self, "module_")
        _reject_dataset(X)
        X, _ = self._validate(X, reset=False)
        return self._predict_outputs(X)

    def _fitted_metadata(self):
        meta = super()._fitted_metadata()
        meta["classes_"] = self.classes_.tolist()
        meta["classes_dtype"] = self.classes_.dtype.str if self.classes_.dtype != object else "O"
        return meta

    def _restore_metadata(self, meta):
        super()._restore_metadata(meta)
        self.classes_ = np.asarray(meta["classes_"], dtype=np.dtype(meta["classes_dtype"]))


class ImageInputMixin:
    """Image input for an estimator: ``(n, C, H, W)``, ``(n, H, W)`` or flat rows with ``input_shape``.

    Place it left of the base class. Adds the ``input_shape`` parameter's
    constraint and the fitted ``input_shape_``.
    """

    _image_constraints = {
        "input_shape": [None, TupleOf(Interval(Integral, 1, None, closed="left"),
                                       lengths=(2, 3))],
    }

    def _to_samples(self, X, *, reset):
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags

