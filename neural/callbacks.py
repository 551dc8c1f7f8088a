"""Callbacks: code that the training loop of every neural estimator calls as it runs.

Pass them as ``callbacks=[...]`` to any estimator of :mod:`neural`. A
callback subclasses :class:`Callback` and overrides the hooks it needs; every
hook receives the estimator first and keyword arguments (always
``trainer``, the running :class:`~neural._trainer.Trainer`). The names follow
skorch's::

    on_train_begin(estimator, trainer)          once per fit / partial_fit call
    on_phase_begin(estimator, phase, trainer)   start of a training phase
    on_epoch_begin(estimator, epoch, trainer)
    on_batch_end(estimator, batch, logs, trainer)   logs: the step's loss terms
    on_epoch_end(estimator, epoch, logs, trainer)   logs: the epoch's history_ record
    on_phase_end(estimator, phase, trainer)
    on_train_end(estimator, trainer)

An exception raised in a hook stops the fit and reaches the caller. To stop
gracefully, set ``trainer.should_stop = True`` (ends the current phase) or
``trainer.stop_fit = True`` (ends the fit) in ``on_epoch_end``.

Callbacks run in increasing ``order`` (ties: the order of the list):
schedules and early stopping first (-20, -10), user callbacks (0), then
checkpoints (50), loggers (90) and the progress bar (100), so that a checkpoint
written in ``on_epoch_end`` holds this epoch's decisions. A callback with
state that a resumed fit needs (a best score, a scheduler) returns it from
:meth:`Callback.state_dict`; it is saved with every checkpoint and restored
by ``fit(..., resume_from=path)``.

Under torch.distributed every process runs the callbacks, except those
with ``rank_zero_only = True`` (checkpoints, loggers, the progress bar), which
run in the process of rank 0 only, so that one process writes files. Every
process sees the same epoch records (statistics summed over the processes),
so schedules and early stopping take the same decisions everywhere; a stop
set in any process stops them all.

The estimators' own options are callbacks too: ``learning_rate="cosine"`` adds
an :class:`LRScheduler`, ``tol`` / ``n_iter_no_change`` / ``early_stopping``
an :class:`EarlyStopping`, ``verbose`` a :class:`ProgressBar`.
"""

import csv
import io
import json
import math
import os
import tempfile
import warnings

import torch

__all__ = [
    "Callback",
    "EarlyStopping",
    "LRScheduler",
    "Checkpoint",
    "ProgressBar",
    "CSVLogger",
    "JSONLinesLogger",
]


class Callback:
    """Base class of callbacks: every hook does nothing.

    Attributes
    ----------
    order : int
        Callbacks run in increasing ``order`` (class attribute, default 0).
    rank_zero_only : bool
        Under torch.distributed, run in the process of rank 0 only (class
        attribute, default False: every process). Set it for callbacks that
        write files or print; leave it False for those that change the
        training (a schedule), which every process must apply.
    """

    order = 0
    rank_zero_only = False

    def on_train_begin(self, estimator, **kwargs):
        """Call at the start of ``fit`` / ``partial_fit``, before any phase.

        Parameters
        ----------
        estimator : BaseTorchEstimator
            The estimator being trained (``module_``, ``optimizer_`` and
            ``history_`` exist).
        **kwargs : dict
            ``trainer``.
        """

    def on_phase_begin(self, estimator, **kwargs):
        """Call at the start of a training phase.

        Parameters
        ----------
        estimator : BaseTorchEstimator
            The estimator being trained.
        **kwargs : dict
            ``phase`` (a :class:`~neural._trainer.Phase`) and ``trainer``.
        """

    def on_epoch_begin(self, estimator, **kwargs):
        """Call before the first minibatch of an epoch.

        Parameters
        ----------
        estimator : BaseTorchEstimator
            The estimator being trained.
        **kwargs : dict
            ``epoch`` (1-based count over the estimator's life) and ``trainer``.
        """

    def on_batch_end(self, estimator, **kwargs):
        """Call after the optimizer step of a minibatch.

        Parameters
        ----------
        estimator : BaseTorchEstimator
            The estimator being trained.
        **kwargs : dict
            ``batch`` (index in the epoch), ``logs`` (the step's loss terms,
            floats or 0-d tensors) and ``trainer``.
        """

    def on_epoch_end(self, estimator, **kwargs):
        """Call after an epoch (and its validation), once its record is in ``history_``.

        Parameters
        ----------
        estimator : BaseTorchEstimator
            The estimator being trained.
        **kwargs : dict
            ``epoch``, ``logs`` (the epoch's ``history_`` record) and ``trainer``.
        """

    def on_phase_end(self, estimator, **kwargs):
        """Call at the end of a training phase.

        Parameters
        ----------
        estimator : BaseTorchEstimator
            The estimator being trained.
        **kwargs : dict
            ``phase`` and ``trainer``.
        """

    def on_train_end(self, estimator, **kwargs):
        """Call at the end of a fit that ran to completion.

        Parameters
        ----------
        estimator : BaseTorchEstimator
            The trained estimator.
        **kwargs : dict
            ``trainer``.
        """

    def state_dict(self):
        """State a resumed fit needs (plain data and tensors).

        Returns
        -------
        state : dict
            Empty for stateless callbacks.
        """
        return {}

    def load_state_dict(self, state):
        """Restore the state returned by :meth:`state_dict`.

        Parameters
        ----------
        state : dict
            A state from :meth:`state_dict`.
        """

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                           if not k.startswith("_") and not k.endswith("_"))
        return f"{type(self).__name__}({params})"


def _monitored(logs, monitor, callback):
    """The monitored value of an epoch record and its name (``"auto"`` resolved)."""
    name = monitor
    if monitor == "auto":
        name = "validation_score" if "validation_score" in logs else "loss"
    if name not in logs:
        raise ValueError(
            f"{type(callback).__name__} monitors {name!r}, which is not in the epoch's logs "
            f"({sorted(logs)}); monitor one of those."
        )
    return float(logs[name]), name


def _lower_is_better(name, lower_is_better):
    return ("loss" in name) if lower_is_better is None else bool(lower_is_better)


class EarlyStopping(Callback):
    """End a phase when the monitored value stops improving.

    After every epoch the monitored value counts as an improvement if it beats
    the best so far by more than ``tol``; after ``patience`` epochs without
    one the phase ends (``trainer.should_stop``). It acts in the phases of
    ``fit`` (not in ``partial_fit``) and starts afresh in each phase.

    Parameters
    ----------
    monitor : str, default="auto"
        Key of the epoch record: ``"validation_score"`` when the fit
        validates (``early_stopping=True`` or ``validation_data``), else
        ``"loss"``; or any key of ``history_``.
    patience : int, default=10
        Epochs without improvement before stopping.
    tol : float, default=1e-4
        Smallest change that counts as an improvement.
    lower_is_better : bool or None, default=None
        None: True for names containing "loss", else False.
    restore_best : bool, default=False
        At the end of the phase, load the weights of the best epoch.

    Attributes
    ----------
    best_ : float or None
        Best monitored value of the current (or last) phase.
    best_epoch_ : int or None
        Epoch (``history_`` count) of that value.
    stopped_epoch_ : int or None
        Epoch after which the phase was stopped, None if it ran out.
    """

    order = -10

    def __init__(self, monitor="auto", *, patience=10, tol=1e-4, lower_is_better=None,
                 restore_best=False):
        if not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be a positive int; got {patience!r}.")
        if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
            raise ValueError(f"tol must be a finite number >= 0; got {tol!r}.")
        self.monitor = monitor
        self.patience = patience
        self.tol = tol
        self.lower_is_better = lower_is_better
        self.restore_best = restore_best
        self._reset()

    def _reset(self):
        self.best_ = None
        self.best_epoch_ = None
        self.stopped_epoch_ = None
        self._wait = 0
        self._best_state = None

    def on_phase_begin(self, estimator, **kwargs):
        self._reset()

    def on_epoch_end(self, estimator, **kwargs):
        trainer = kwargs["trainer"]
        if not trainer.phase.check_convergence:
            return
        value, name = _monitored(kwargs["logs"], self.monitor, self)
        lower = _lower_is_better(name, self.lower_is_better)
        best = self.best_
        if best is None:
            improved, new_best = True, True
        elif lower:
            improved, new_best = value < best - self.tol, value < best
        else:
            improved, new_best = value > best + self.tol, value > best
        self._wait = 0 if improved else self._wait + 1
        if new_best:
            self.best_, self.best_epoch_ = value, kwargs["epoch"]
            if self.restore_best:
                self._best_state = {k: v.detach().clone()
                                    for k, v in estimator.module_.state_dict().items()}
        if self._wait >= self.patience:
            self.stopped_epoch_ = kwargs["epoch"]
            trainer.should_stop = True
            trainer.stop_reason = f"{name} did not improve by {self.tol} for {self.patience} epochs"

    def on_phase_end(self, estimator, **kwargs):
        if self.restore_best and self._best_state is not None:
            estimator.module_.load_state_dict(self._best_state)

    def state_dict(self):
        return {"best": self.best_, "best_epoch": self.best_epoch_, "wait": self._wait,
                "stopped_epoch": self.stopped_epoch_, "best_state": self._best_state}

    def load_state_dict(self, state):
        self.best_, self.best_epoch_ = state["best"], state["best_epoch"]
        self._wait, self.stopped_epoch_ = state["wait"], state["stopped_epoch"]
        self._best_state = state["best_state"]


def _scheduler_class(policy):
    if isinstance(policy, type):
        return policy
    lookup = {name.lower(): obj for name, obj in vars(torch.optim.lr_scheduler).items()
              if isinstance(obj, type) and name[0] != "_"}
    cls = lookup.get(str(policy).lower())
    if cls is None:
        raise ValueError(f"policy={policy!r} is not a class of torch.optim.lr_scheduler; pass the "
                         "class or its name, e.g. 'CosineAnnealingLR', 'StepLR', 'OneCycleLR'.")
    return cls


class LRScheduler(Callback):
    """Any :mod:`torch.optim.lr_scheduler` schedule, restarted in every phase of ``fit``.

    A scheduler is built at the start of each phase on the estimator's
    optimizer (the phase's learning rate is its starting point). Stepped per
    epoch it steps at the *start* of every epoch but the phase's first, so the
    learning rate of an epoch is fixed before the epoch runs, whatever the
    order of callbacks. Schedules do not apply in ``partial_fit``. An
    ``LRScheduler`` among an estimator's callbacks replaces the schedule of its
    ``learning_rate`` parameter.

    Parameters
    ----------
    policy : str or type, default="CosineAnnealingLR"
        A class of :mod:`torch.optim.lr_scheduler` or its name (case-insensitive).
    step_every : {"epoch", "batch"}, default="epoch"
        When the scheduler steps.
    monitor : str, default="auto"
        For ``ReduceLROnPlateau``: the ``history_`` key passed to ``step``
        (``"auto"``: the validation score if any, else the loss).
    **kwargs : dict
        Arguments of the scheduler. Defaults filled in when absent:
        ``CosineAnnealingLR``'s ``T_max`` (the phase's epochs, or steps with
        ``step_every="batch"``); ``OneCycleLR``'s ``max_lr`` (the phase's
        learning rate) and ``total_steps`` (the phase's steps).

    Attributes
    ----------
    scheduler_ : torch.optim.lr_scheduler.LRScheduler or None
        The scheduler of the current (or last) phase.
    """

    order = -20

    def __init__(self, policy="CosineAnnealingLR", *, step_every="epoch", monitor="auto",
                 **kwargs):
        if step_every not in ("epoch", "batch"):
            raise ValueError(f"step_every must be 'epoch' or 'batch'; got {step_every!r}.")
        self.policy = policy
        self.step_every = step_every
        self.monitor = monitor
        self.kwargs = kwargs
        _scheduler_class(policy)
        self.scheduler_ = None
        self._metric = None
        self._restored = False

    def _arguments(self, cls, trainer):
        kwargs = dict(self.kwargs)
        steps = trainer.phase.n_epochs
        if self.step_every == "batch":
            steps *= trainer.batches_per_epoch
        if cls is torch.optim.lr_scheduler.CosineAnnealingLR:
            kwargs.setdefault("T_max", steps)
        if cls is torch.optim.lr_scheduler.OneCycleLR:
            kwargs.setdefault("max_lr", trainer.estimator.optimizer_.param_groups[0]["lr"])
            if "epochs" not in kwargs:
                kwargs.setdefault("total_steps", steps)
        return kwargs

    def on_phase_begin(self, estimator, **kwargs):
        trainer = kwargs["trainer"]
        self.scheduler_, self._metric = None, None
        if not trainer.phase.scheduled:
            return
        cls = _scheduler_class(self.policy)
        if self.step_every == "batch" and cls is torch.optim.lr_scheduler.ReduceLROnPlateau:
            raise ValueError("ReduceLROnPlateau needs an epoch's score: use step_every='epoch'.")
        arguments = self._arguments(cls, trainer)
        try:
            self.scheduler_ = cls(estimator.optimizer_, **arguments)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"LRScheduler could not build {cls.__name__}({arguments}): {exc}") from exc

    def _step(self):
        with warnings.catch_warnings():
            if self._restored:
                # a restored scheduler's first step may precede this process's first optimizer
                # step; torch warns about an order that only holds within one process
                warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
                self._restored = False
            if isinstance(self.scheduler_, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler_.step(self._metric)
            else:
                self.scheduler_.step()

    def on_epoch_begin(self, estimator, **kwargs):
        if (self.scheduler_ is not None and self.step_every == "epoch"
                and kwargs["trainer"].epoch_in_phase > 0):
            self._step()

    def on_batch_end(self, estimator, **kwargs):
        if self.scheduler_ is not None and self.step_every == "batch":
            self._step()

    def on_epoch_end(self, estimator, **kwargs):
        if isinstance(self.scheduler_, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self._metric, _ = _monitored(kwargs["logs"], self.monitor, self)

    def state_dict(self):
        return {"scheduler": None if self.scheduler_ is None else self.scheduler_.state_dict(),
                "metric": self._metric}

    def load_state_dict(self, state):
        if self.scheduler_ is not None and state["scheduler"] is not None:
            self.scheduler_.load_state_dict(state["scheduler"])
            self._restored = True
        self._metric = state["metric"]


class Checkpoint(Callback):
    """Save the estimator to a folder: the best epoch and / or every ``every`` epochs.

    Files are written with the estimator's ``save`` (weights, optimizer and
    scheduler state, epoch, random states: ``fit(..., resume_from=path)``
    continues from any of them): ``best.pt`` when the monitored value
    improves, ``epoch_0005.pt`` and so on every ``every`` epochs.

    Parameters
    ----------
    dirname : str or path-like
        Folder (created if missing).
    every : int or None, default=None
        Also save every ``every`` epochs (None: never).
    save_best : bool, default=True
        Save ``best.pt`` whenever the monitored value beats the best so far.
    monitor : str, default="auto"
        ``"validation_score"`` when the fit validates, else ``"loss"``; or any
        key of ``history_``.
    lower_is_better : bool or None, default=None
        None: True for names containing "loss", else False.

    Attributes
    ----------
    best_ : float or None
        Best monitored value so far.
    best_epoch_ : int or None
        Epoch of ``best.pt``.
    saved_ : list of str
        Paths written, oldest first.
    """

    order = 50
    rank_zero_only = True

    def __init__(self, dirname, *, every=None, save_best=True, monitor="auto",
                 lower_is_better=None):
        if every is not None and (not isinstance(every, int) or every < 1):
            raise ValueError(f"every must be a positive int or None; got {every!r}.")
        self.dirname = os.fspath(dirname)
        self.every = every
        self.save_best = save_best
        self.monitor = monitor
        self.lower_is_better = lower_is_better
        self.best_ = None
        self.best_epoch_ = None
        self.saved_ = []

    def on_train_begin(self, estimator, **kwargs):
        os.makedirs(self.dirname, exist_ok=True)

    def on_epoch_end(self, estimator, **kwargs):
        epoch = kwargs["epoch"]
        if self.save_best:
            value, name = _monitored(kwargs["logs"], self.monitor, self)
            lower = _lower_is_better(name, self.lower_is_better)
            if self.best_ is None or (value < self.best_ if lower else value > self.best_):
                self.best_, self.best_epoch_ = value, epoch
                self._save(estimator, "best.pt")
        if self.every is not None and epoch % self.every == 0:
            self._save(estimator, f"epoch_{epoch:04d}.pt")

    def _save(self, estimator, name):
        path = os.path.join(self.dirname, name)
        estimator.save(path)
        self.saved_.append(path)

    def state_dict(self):
        return {"best": self.best_, "best_epoch": self.best_epoch_}

    def load_state_dict(self, state):
        self.best_, self.best_epoch_ = state["best"], state["best_epoch"]


class ProgressBar(Callback):
    """A tqdm progress bar over the epochs of a fit, with the loss; the finished bar stays.

    Parameters
    ----------
    leave : bool, default=True
        Keep the finished bar on screen.
    **tqdm_kwargs : dict
        Further arguments of :class:`tqdm.auto.tqdm` (``file``, ``ncols``, ...).
    """

    order = 100
    rank_zero_only = True

    def __init__(self, *, leave=True, **tqdm_kwargs):
        self.leave = leave
        self.tqdm_kwargs = tqdm_kwargs
        self._bar = None

    def on_train_begin(self, estimator, **kwargs):
        from tqdm.auto import tqdm

        self._close()
        trainer = kwargs["trainer"]
        total = sum(p.n_epochs for p in trainer.phases)
        self._bar = tqdm(total=total, initial=min(trainer.epochs_done, total),
                         desc=type(estimator).__name__, leave=self.leave, **self.tqdm_kwargs)

    def on_epoch_end(self, estimator, **kwargs):
        if self._bar is None:
            return
        logs = kwargs["logs"]
        shown = {"loss": f"{logs['loss']:.4f}"}
        if "validation_score" in logs:
            shown["val"] = f"{logs['validation_score']:.4f}"
        self._bar.set_postfix(shown, refresh=False)
        self._bar.update(1)

    def on_train_end(self, estimator, **kwargs):
        self._close()

    def _close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_bar"] = None
        return state


def _plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_atomic(path, text):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class CSVLogger(Callback):
    """Write ``history_`` to a CSV file after every epoch (one row per epoch).

    The whole history is rewritten each time (atomically), so the file always
    matches ``history_``, also after a resumed or warm-started fit; columns are
    every key seen, in order of appearance.

    Parameters
    ----------
    path : str or path-like
        The CSV file.
    """

    order = 90
    rank_zero_only = True

    def __init__(self, path):
        self.path = os.fspath(path)

    def on_epoch_end(self, estimator, **kwargs):
        columns = []
        for record in estimator.history_:
            columns += [k for k in record if k not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for record in estimator.history_:
            writer.writerow({k: _plain(v) for k, v in record.items()})
        _write_atomic(self.path, buffer.getvalue())


class JSONLinesLogger(Callback):
    """Append every epoch's ``history_`` record to a JSON-lines file.

    At the start of a fit the file is rewritten with the history so far
    (empty for a fresh fit), so a resumed fit continues the same file.
    Non-finite numbers are written as ``null``.

    Parameters
    ----------
    path : str or path-like
        The ``.jsonl`` file.
    """

    order = 90
    rank_zero_only = True

    def __init__(self, path):
        self.path = os.fspath(path)

    @staticmethod
    def _line(record):
        return json.dumps({k: _plain(v) for k, v in record.items()}) + "\n"

    def on_train_begin(self, estimator, **kwargs):
        _write_atomic(self.path, "".join(self._line(r) for r in estimator.history_))

    def on_epoch_end(self, estimator, **kwargs):
        with open(self.path, "a") as f:
            f.write(self._line(kwargs["logs"]))
