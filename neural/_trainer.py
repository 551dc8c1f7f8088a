"""The one training loop of every neural estimator.

The estimator (see :mod:`neural._estimator`) says *what* to train: it turns
``X``, ``y`` and fit parameters into a dataset, builds the module, lists its
training phases and yields the losses of a minibatch. The :class:`Trainer`
owns *how*: seeding, batching through one DataLoader, the optimizer, the
forward / backward / step of every minibatch, validation, callbacks,
``history_``, memory measurement, and the state that makes a checkpoint
resumable bit for bit.

Mixed precision and torch.distributed go through single places:
:meth:`Trainer._forward_context` wraps every forward (autocast, see
:mod:`neural._precision`), :meth:`Trainer._backward` every backward (loss
weight of the process's shard, gradient scaling), :meth:`Trainer._optimizer_step`
every optimizer step (unscale / step / update); :meth:`Trainer._train_loader`
and :meth:`Trainer._eval_loader` build every DataLoader of a fit (through
:func:`neural._data.make_loader`), sharded across processes;
:meth:`Trainer._notify` runs every callback (those that write files on rank 0
only); :attr:`Trainer.should_stop` is the one stop decision, taken for all
processes at once (see :mod:`neural._distributed`).
"""

import contextlib
import inspect
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from torch.utils._pytree import tree_leaves

from ._data import epoch_batches, make_loader, n_batches, sequential_batches, to_device
from ._distributed import (
    derived_seed,
    distributed_context,
    shard,
    training_device,
    wrap_units,
)
from ._precision import autocast, check_precision, make_grad_scaler
from ._syncbn import synchronized_batchnorm
from ._utils import resolve_device
from ._validation import resolve_optimizer
from .memory import SavedTensorMemory, step_peak_memory

__all__ = ["Phase", "TrainingRNG", "Trainer", "build_optimizer"]

_INT32_MAX = np.iinfo(np.int32).max


@dataclass(frozen=True)
class Phase:
    """One stage of a fit: its own epochs, starting learning rate and settings.

    An estimator lists its phases in ``_training_phases``; most have one.
    DToP has two: plain training, then fine-tuning with pruning active. At the
    start of every phase the learning rate restarts (the schedule of
    ``learning_rate`` and :class:`~neural.callbacks.LRScheduler` callbacks run
    within a phase) and :class:`~neural.callbacks.EarlyStopping` starts
    counting afresh; the optimizer state carries over.

    Parameters
    ----------
    name : str
        Name, recorded in checkpoints (a resumed fit must have the same phases).
    n_epochs : int
        Epochs of the phase.
    learning_rate : float or None, default=None
        Learning rate at the start of the phase (None: ``learning_rate_init``).
    scheduled : bool, default=True
        Whether learning-rate schedules apply (False for ``partial_fit``).
    check_convergence : bool, default=True
        Whether the estimator's convergence test (``tol``, ``n_iter_no_change``,
        ``early_stopping``) applies, with a ``ConvergenceWarning`` when the
        phase ends without converging.
    options : dict, default={}
        Model-specific settings the estimator's loss reads (DToP: ``p0``).
    """

    name: str
    n_epochs: int
    learning_rate: float | None = None
    scheduled: bool = True
    check_convergence: bool = True
    options: dict = field(default_factory=dict)


def _random_state_to_dict(rs):
    _, keys, pos, has_gauss, gauss = rs.get_state()
    return {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "gauss": float(gauss)}


def _random_state_from_dict(d):
    rs = np.random.RandomState()
    rs.set_state(("MT19937", d["keys"].numpy().astype(np.uint32), int(d["pos"]),
                  int(d["has_gauss"]), float(d["gauss"])))
    return rs


class TrainingRNG:
    """The seeded random streams of one estimator's training.

    ``random_state`` gives, in this order, the seed of the torch generator
    (weight initialisation, dropout, model-side sampling) and the seed of the
    NumPy stream ``"batches"`` (minibatch order, validation split). Further
    named streams (P2C's pair sampling) derive from ``"batches"`` on first
    use. All states are saved in checkpoints as tensors and plain numbers.

    Parameters
    ----------
    random_state : int, RandomState instance or None
        The estimator's ``random_state``.
    """

    def __init__(self, random_state):
        rng = check_random_state(random_state)
        self.torch_seed = int(rng.randint(_INT32_MAX))
        self.streams = {"batches": np.random.RandomState(rng.randint(_INT32_MAX))}
        self.torch_state = None
        self.cuda_states = None

    def stream(self, name):
        """The NumPy stream ``name``, created from ``"batches"`` the first time.

        Parameters
        ----------
        name : str
            Stream name.

        Returns
        -------
        rng : numpy.random.RandomState
            The stream.
        """
        if name not in self.streams:
            seed = self.streams["batches"].randint(_INT32_MAX)
            self.streams[name] = np.random.RandomState(seed)
        return self.streams[name]

    def capture_torch(self, device):
        """Record the torch generator state(s) in use now."""
        self.torch_state = torch.get_rng_state()
        if device.type == "cuda":
            self.cuda_states = torch.cuda.get_rng_state_all()

    def restore_torch(self, device):
        """Set the torch generator state(s) recorded last."""
        torch.set_rng_state(self.torch_state)
        if device.type == "cuda" and self.cuda_states is not None:
            torch.cuda.set_rng_state_all(self.cuda_states)

    def state_dict(self):
        """Plain data and tensors (safe for ``torch.load(weights_only=True)``)."""
        return {
            "torch_seed": self.torch_seed,
            "torch": self.torch_state,
            "cuda": list(self.cuda_states) if self.cuda_states is not None else None,
            "numpy": {k: _random_state_to_dict(v) for k, v in self.streams.items()},
        }

    @classmethod
    def from_state_dict(cls, state):
        """Rebuild the streams from :meth:`state_dict`."""
        rng = cls.__new__(cls)
        rng.torch_seed = int(state["torch_seed"])
        rng.torch_state = state["torch"]
        rng.cuda_states = state["cuda"]
        rng.streams = {k: _random_state_from_dict(v) for k, v in state["numpy"].items()}
        return rng


def build_optimizer(estimator, params):
    """The optimizer of ``estimator``'s parameters (``solver``, its arguments, ``optimizer_kwargs``).

    Parameters
    ----------
    estimator : BaseTorchEstimator
        Supplies ``solver``, ``learning_rate_init``, ``weight_decay``,
        ``momentum``, ``nesterovs_momentum`` and ``optimizer_kwargs``.
    params : iterable
        Parameters or parameter groups.

    Returns
    -------
    optimizer : torch.optim.Optimizer
        The optimizer.

    Raises
    ------
    ValueError
        If the optimizer does not take an argument that was set (for example
        ``weight_decay`` > 0) or rejects ``optimizer_kwargs``.
    """
    cls = resolve_optimizer(estimator.solver)
    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {"lr": estimator.learning_rate_init}
    if "weight_decay" in accepted:
        kwargs["weight_decay"] = estimator.weight_decay
    elif estimator.weight_decay:
        raise ValueError(f"solver={cls.__name__} takes no weight_decay; set weight_decay=0.")
    if cls is torch.optim.SGD:
        kwargs["momentum"] = estimator.momentum
        kwargs["nesterov"] = bool(estimator.nesterovs_momentum and estimator.momentum > 0)
    kwargs.update(estimator.optimizer_kwargs or {})
    try:
        return cls(params, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"solver={cls.__name__} rejected its arguments {kwargs}: {exc}") from exc


def _callback_keys(names):
    """``name#k``: the k-th callback of each class name, in order."""
    seen = {}
    keys = []
    for name in names:
        keys.append(f"{name}#{seen.get(name, 0)}")
        seen[name] = seen.get(name, 0) + 1
    return keys


class Trainer:
    """Runs the training of one ``fit`` or ``partial_fit`` call.

    Callbacks receive it as ``trainer``; these attributes are theirs to read:

    Parameters
    ----------
    estimator : BaseTorchEstimator
        The estimator being trained.
    dataset : torch.utils.data.Dataset
        Its prepared training data, ``(x, y)`` items.
    phases : list of Phase
        The phases to run.
    callbacks : list of Callback
        Every callback of this fit (built-in ones included); they run in the
        order of their ``order`` attribute, then of the list.
    validation : torch.utils.data.Dataset or None, default=None
        Prepared validation data given to ``fit``.
    split : bool, default=False
        Hold out ``validation_fraction`` of ``dataset`` for validation.
    checkpoint : dict or None, default=None
        Training state read from a checkpoint to resume from.

    Attributes
    ----------
    phase : Phase
        The phase being run.
    epoch : int
        Epochs completed over the estimator's life (``estimator.n_iter_``).
    epoch_in_phase : int
        Epochs completed in the current phase.
    should_stop : bool
        Set it to True (from ``on_epoch_end``) to end the current phase
        after this epoch; ``stop_reason`` says why.
    stop_fit : bool
        Set it to True to end the whole fit after this epoch (later phases
        are skipped).
    train_indices : ndarray of int
        Indices of ``dataset`` trained on (the rest is the validation split).
    epochs_done : int
        Epochs of this fit already done when it started (non-zero when resumed).
    batches_per_epoch : int
        Minibatches per training epoch.
    world_size : int
        Processes training together (1 without torch.distributed).
    rank : int
        This process's rank (0 without torch.distributed).
    is_main : bool
        Whether this is rank 0, where callbacks that write files run.
    """

    def __init__(self, estimator, dataset, *, phases, callbacks, validation=None, split=False,
                 checkpoint=None):
        self.estimator = estimator
        self.dataset = dataset
        self.phases = list(phases)
        self.callbacks = sorted(callbacks, key=lambda c: c.order)
        self.validation = validation
        self.split = split
        self.checkpoint = checkpoint
        self.phase = None
        self.phase_index = 0
        self.epoch_in_phase = 0
        self.should_stop = False
        self.stop_fit = False
        self.stop_reason = None
        self.in_epoch = False
        self.train_indices = None
        self.valid_indices = None
        self.split_seed = None
        self.epochs_done = 0
        self.context = None  # DistContext of a distributed fit
        self.units = None  # its DDP wrappers, one per loss of a step
        self.scaler = None  # GradScaler of float16 training
        self._loss_weight = 1.0
        self._global_sizes = None

    @property
    def world_size(self):
        """Processes training together (int)."""
        return 1 if self.context is None else self.context.world_size

    @property
    def rank(self):
        """This process's rank (int)."""
        return 0 if self.context is None else self.context.rank

    @property
    def is_main(self):
        """Whether this process is rank 0 (bool)."""
        return self.rank == 0

    def broadcast(self, obj):
        """Rank 0's ``obj`` in every process (``obj`` itself without torch.distributed).

        Model code uses it for per-epoch decisions that every process must
        share exactly (P2C's pairs).

        Parameters
        ----------
        obj : object
            A picklable value computed in every process.

        Returns
        -------
        obj : object
            Rank 0's value.
        """
        return obj if self.context is None else self.context.broadcast(obj)

    @property
    def _min_batch(self):
        # batch norm needs 2 samples; under DDP every process needs one of each batch
        return max(2, self.world_size)

    @property
    def epoch(self):
        """Epochs completed over the estimator's life (int)."""
        return self.estimator.n_iter_

    @property
    def batches_per_epoch(self):
        """Minibatches in one training epoch (int)."""
        return n_batches(len(self.train_indices), self.estimator.batch_size, self._min_batch)

    # ------------------------------------------------------------------ run
    def run(self, *, fresh):
        """Train: set up (fresh, continued or resumed), then run every phase.

        Parameters
        ----------
        fresh : bool
            Start from a new module and optimizer (else continue the
            estimator's own, or the checkpoint's).
        """
        est = self.estimator
        device = self._setup_device(fresh)
        devices = [device] if device.type == "cuda" else []
        # the global torch RNG is the estimator's own stream inside, the caller's outside
        with torch.random.fork_rng(devices=devices):
            if fresh:
                self._start_fresh(device)
            else:
                self._continue(device)
            self._plan_data()
            self.scaler = make_grad_scaler(est.precision, device,
                                           getattr(est, "_grad_scaler_state", None))
            est._trainer = self
            try:
                with self._distributed():
                    self._run_phases()
            finally:
                est._trainer = None
                est._rng.capture_torch(device)
                est._last_snapshot = self.snapshot()
                est._grad_scaler_state = self.scaler_state()

    def _setup_device(self, fresh):
        """The training device; joins the process group of a distributed fit."""
        est = self.estimator
        device = resolve_device(est.device) if fresh else est.device_
        self.context = distributed_context(est.distributed, device)
        device = training_device(device, self.context)
        check_precision(est.precision, device)
        if not fresh and device != est.device_:
            # a loaded model ("cuda") continued by the process that owns cuda:LOCAL_RANK
            est.module_.to(device)
            est.device_ = device
            if est.optimizer_ is not None:  # loading a state casts it to the parameters' device
                est.optimizer_.load_state_dict(est.optimizer_.state_dict())
        return device

    @contextlib.contextmanager
    def _distributed(self):
        """Under torch.distributed: global-batch batch norm, one DDP wrapper per loss of a step."""
        if self.context is None:
            yield
            return
        est = self.estimator
        with synchronized_batchnorm(est.module_, est.device_):
            self.units = wrap_units(est._distributed_units(), est.optimizer_, est.device_,
                                    type(est).__name__)
            try:
                yield
            finally:
                self.units = None

    def scaler_state(self):
        """State of the float16 gradient scaler (None without one).

        Returns
        -------
        state : dict or None
            :meth:`torch.amp.GradScaler.state_dict`, saved in checkpoints.
        """
        return None if self.scaler is None else self.scaler.state_dict()

    def _start_fresh(self, device):
        est = self.estimator
        est._rng = self._shared_rng(TrainingRNG(est.random_state))
        est._grad_scaler_state = None
        torch.manual_seed(est._rng.torch_seed)
        est.device_ = device
        est.module_ = est._build_module().to(device)
        est._init_module(self.dataset)
        est.optimizer_ = self._build_optimizer()
        est.history_ = []
        est.loss_curve_ = []
        est.n_iter_ = 0
        est.best_loss_ = np.inf
        est.peak_cuda_memory_bytes_ = None
        est.peak_memory_bytes_ = None
        est.validation_scores_ = None
        est.best_validation_score_ = None

    def _continue(self, device):
        est = self.estimator
        # a checkpoint's random and gradient-scaler states were restored with its weights
        est._rng = self._shared_rng(est._rng)
        est._rng.restore_torch(device)
        if est.optimizer_ is None:  # after load(): a fresh optimizer
            est.optimizer_ = self._build_optimizer()

    def _shared_rng(self, rng):
        """Rank 0's random streams in every process (batch plan, split, pairs must agree)."""
        if self.context is None:
            return rng
        return TrainingRNG.from_state_dict(self.context.broadcast(rng.state_dict()))

    def _build_optimizer(self):
        return build_optimizer(self.estimator, self.estimator._optimizer_params())

    def _plan_data(self):
        """Training / validation indices (the split is seeded once per fit)."""
        est = self.estimator
        n = len(self.dataset)
        self._check_same_data()
        self.train_indices = np.arange(n)
        if self.split:
            if self.checkpoint is not None and self.checkpoint["split_seed"] is not None:
                self.split_seed = int(self.checkpoint["split_seed"])
            else:
                self.split_seed = int(est._rng.stream("batches").randint(_INT32_MAX))
            self.train_indices, self.valid_indices = self._split_indices(n)
        elif self.validation is not None:
            self.valid_indices = np.arange(len(self.validation))
        if len(self.train_indices) < self._min_batch:
            needs = ("batch norm" if self.world_size == 1
                     else f"a sample for each of the {self.world_size} processes")
            raise ValueError(
                f"{type(est).__name__} needs at least {self._min_batch} samples to train "
                f"({needs}); got n_samples={len(self.train_indices)}."
            )
        if est.batch_size < self.world_size:
            raise ValueError(
                f"batch_size={est.batch_size} is smaller than the number of processes "
                f"({self.world_size}); batch_size is the global minibatch, cut into one share "
                "per process: use batch_size >= the number of processes."
            )
        if self.valid_indices is not None and est.validation_scores_ is None:
            est.validation_scores_ = []
            est.best_validation_score_ = -np.inf

    def _check_same_data(self):
        """Under torch.distributed every process must hold the same data (each trains a share)."""
        if self.context is None:
            return
        sizes = self.context.all_gather(
            (len(self.dataset), None if self.validation is None else len(self.validation)))
        if len(set(sizes)) > 1:
            raise ValueError(
                "the processes of this distributed fit hold different data: (training, "
                f"validation) sizes by rank are {sizes}. Pass the same X, y and validation_data "
                "in every process; each trains on its own share of every global minibatch."
            )

    def _split_indices(self, n):
        est = self.estimator
        n_val = int(round(est.validation_fraction * n))
        if n_val < 2 or n - n_val < 2:
            raise ValueError(
                f"early_stopping with validation_fraction={est.validation_fraction} leaves "
                f"{n_val} validation and {n - n_val} training samples out of {n}; "
                "use more data, another validation_fraction, or early_stopping=False."
            )
        targets = getattr(self.dataset, "targets", None)
        idx = np.arange(n)
        try:
            train, valid = train_test_split(idx, test_size=n_val, random_state=self.split_seed,
                                            stratify=targets)
        except ValueError:  # a class too small to stratify
            train, valid = train_test_split(idx, test_size=n_val, random_state=self.split_seed)
        return train, valid

    def _start_position(self):
        """(phase index, epochs done in it, stop flags) to start from."""
        if self.checkpoint is None:
            return 0, 0, False, False
        pos = self.checkpoint["position"]
        names = [p.name for p in self.phases]
        if list(pos["phases"]) != names:
            raise ValueError(
                f"the checkpoint was written during a fit with phases {list(pos['phases'])}, "
                f"but this fit has phases {names}; resume with the parameters of that fit."
            )
        return int(pos["phase"]), int(pos["epoch"]), bool(pos["stopped"]), bool(pos["stop_fit"])

    def _run_phases(self):
        est = self.estimator
        start, first_epoch, stopped, stop_fit = self._start_position()
        self.epochs_done = sum(p.n_epochs for p in self.phases[:start]) + first_epoch
        self._notify("on_train_begin")
        est._on_train_begin(self)
        for p in range(start, len(self.phases)):
            resuming = self.checkpoint is not None and p == start
            self._run_phase(p, first_epoch if resuming else 0, resuming,
                            stopped=resuming and stopped, stop_fit=resuming and stop_fit)
            if self.stop_fit:
                break
        self._notify("on_train_end")

    def _run_phase(self, index, first_epoch, resuming, *, stopped=False, stop_fit=False):
        est = self.estimator
        phase = self.phases[index]
        self.phase, self.phase_index, self.epoch_in_phase = phase, index, first_epoch
        # a phase that was stopped when the checkpoint was written runs no more epochs
        self.should_stop, self.stop_fit, self.stop_reason = stopped, stop_fit, None
        lr = est.learning_rate_init if phase.learning_rate is None else phase.learning_rate
        for group in est.optimizer_.param_groups:
            group["lr"] = group["initial_lr"] = lr
        self._notify("on_phase_begin", phase=phase)
        if resuming:
            # after the callbacks built their schedulers: theirs and the optimizer's saved state win
            self._apply_checkpoint()
        # activation memory is measured on the first step of every scheduled phase, the peak on
        # the next; partial_fit's calls (unscheduled phases) measure only until it has a figure
        measure = phase.scheduled or getattr(est, "peak_memory_bytes_", None) is None
        self._measure_saved = self._measure_peak = measure
        self._warmup_batch = 0
        self._single_step = (phase.n_epochs - first_epoch) * self.batches_per_epoch == 1
        while self.epoch_in_phase < phase.n_epochs and not (self.should_stop or self.stop_fit):
            self._run_epoch()
        self._notify("on_phase_end", phase=phase)
        if phase.check_convergence and not (self.should_stop or self.stop_fit) and self.is_main:
            warnings.warn(
                f"{type(est).__name__}: maximum iterations ({phase.n_epochs}) reached in phase "
                f"{phase.name!r} and the optimisation hasn't converged yet (the monitored "
                "score still improving by more than tol); increase max_iter if accuracy matters.",
                ConvergenceWarning,
            )

    def _apply_checkpoint(self):
        est = self.estimator
        est.optimizer_.load_state_dict(self.checkpoint["optimizer"])
        # a callback gets the state saved by the callback of its class at the same rank; one
        # that was not there (or is gone, like the one that interrupted the fit) starts afresh
        saved = dict(zip(_callback_keys(s["class"] for s in self.checkpoint["callbacks"]),
                         (s["state"] for s in self.checkpoint["callbacks"])))
        for key, callback in zip(_callback_keys(type(c).__qualname__ for c in self.callbacks),
                                 self.callbacks):
            if key in saved:
                callback.load_state_dict(saved[key])

    # --------------------------------------------------------------- epochs
    def _run_epoch(self):
        est = self.estimator
        self.in_epoch = True
        if self.context is not None:
            # the model's own draws (dropout) differ between processes, reproducibly per epoch
            torch.manual_seed(derived_seed(est._rng.torch_seed, est.n_iter_, self.rank))
        self._notify("on_epoch_begin", epoch=est.n_iter_ + 1)
        est._on_epoch_begin(self)
        record = {"epoch": est.n_iter_ + 1, "lr": float(est.optimizer_.param_groups[0]["lr"])}
        start = time.perf_counter()
        stats = self._train_epoch()
        record.update(stats)
        record["time"] = time.perf_counter() - start
        if self.valid_indices is not None:
            score = self._validation_score()
            record["validation_score"] = score
            est.validation_scores_.append(score)
            est.best_validation_score_ = max(est.best_validation_score_, score)
        est.n_iter_ += 1
        self.epoch_in_phase += 1
        est.loss_curve_.append(stats["loss"])
        est.best_loss_ = min(est.best_loss_, stats["loss"])
        est.history_.append(record)
        est._on_epoch_end(self, record)
        self.in_epoch = False
        self._notify("on_epoch_end", epoch=est.n_iter_, logs=record)
        if self.context is not None:
            # one decision for all processes: any process's stop stops them all
            stop = self.context.any(self.should_stop, self.stop_fit)
            if stop != (self.should_stop, self.stop_fit) and self.stop_reason is None:
                self.stop_reason = "stopped in another process"
            self.should_stop, self.stop_fit = stop

    def _train_loader(self):
        est = self.estimator
        batches = epoch_batches(self.train_indices, est.batch_size, est._rng.stream("batches"),
                                min_last=self._min_batch)
        self._global_sizes = [len(b) for b in batches]
        # the loader's generator only seeds workers; derived without drawing from any stream
        seed = (est._rng.torch_seed * 1_000_003 + est.n_iter_) % (2**62)
        if self.context is not None:
            # every process plans the same global batches and reads its own share of each
            batches = [shard(b, self.rank, self.world_size) for b in batches]
            seed = derived_seed(est._rng.torch_seed, est.n_iter_, self.rank)
        return batches, make_loader(self.dataset, batches, num_workers=est.num_workers,
                                    device=est.device_, seed=seed)

    def _eval_loader(self, dataset, indices):
        est = self.estimator
        batches = [indices[b].tolist() for b in sequential_batches(len(indices),
                                                                    max(est.batch_size, 256))]
        return make_loader(dataset, batches, num_workers=est.num_workers, device=est.device_)

    def _train_epoch(self):
        est = self.estimator
        est.module_.train()
        batches, loader = self._train_loader()
        # on the CPU a stat becomes a float at once (cheapest); on an accelerator it stays a
        # tensor summed on the device, so that no step waits for a host synchronisation
        on_host = est.device_.type == "cpu"
        totals, seen = {}, 0
        for i, (X, y) in enumerate(loader):
            X, y = to_device(X, est.device_), to_device(y, est.device_)
            n = len(batches[i])
            # DDP averages the processes' gradients: weighting each process's mean loss by its
            # share of the global batch makes that average the gradient of the global mean
            self._loss_weight = n * self.world_size / self._global_sizes[i]
            stats = self._measured_step(X, y, n)
            seen += n
            for key, value in stats.items():
                if isinstance(value, torch.Tensor):
                    value = float(value) if on_host else value.detach().double()
                totals[key] = totals.get(key, 0.0) + value * n
            self._notify("on_batch_end", batch=i, logs=stats)
        if self.context is not None:
            totals, seen = self._global_totals(totals, seen)
        return {key: float(value / seen) for key, value in totals.items()}

    def _global_totals(self, totals, seen):
        """Sums of the epoch's statistics over all processes (keys in rank 0's order first)."""
        keys = list(dict.fromkeys(k for ks in self.context.all_gather(list(totals)) for k in ks))
        sums = self.context.sum([float(totals.get(k, 0.0)) for k in keys] + [seen])
        return dict(zip(keys, sums[:-1])), sums[-1]

    def _validation_score(self):
        est = self.estimator
        data = self.dataset if self.split else self.validation
        indices, spans = self.valid_indices, None
        if self.context is not None and len(indices) >= self.world_size:
            # each process scores a contiguous share; the outputs are gathered in order
            spans = self.context.split(len(indices))
            start, stop = spans[self.rank]
            indices = indices[start:stop]
        est.module_.eval()
        outputs, targets = [], []
        with torch.no_grad():
            for X, y in self._eval_loader(data, indices):
                with self._forward_context():
                    out = est._forward(to_device(X, est.device_))
                outputs.append(out.float().cpu())
                targets.append(y)
        outputs, targets = torch.cat(outputs), torch.cat(targets)
        if spans is not None:
            counts = [stop - start for start, stop in spans]
            outputs = self.context.gather_rows(outputs, counts)
            targets = self.context.gather_rows(targets, counts)
        return float(est._validation_score(outputs, targets.numpy()))

    # ---------------------------------------------------------------- steps
    def _measured_step(self, X, y, n):
        est = self.estimator
        saved = self._measure_saved
        # the peak of everything is taken on a steady-state step, the second of the phase (the
        # first was the warm-up: optimizer state exists now), or the first if it is the only one;
        # again on a later step if that one had a smaller (last) batch than the warm-up
        peak = self._measure_peak and (not saved or self._single_step)
        if not (saved or peak):
            return self._step(X, y)
        stats = {}

        def step():
            stats.update(self._step(X, y))

        def measured():
            if not peak:
                return step()
            est.peak_memory_bytes_ = step_peak_memory(step, est.device_,
                                                      self._resident_tensors(X, y))
            if est.device_.type == "cuda":
                est.peak_cuda_memory_bytes_ = est.peak_memory_bytes_
            self._measure_peak = n < self._warmup_batch

        if saved:
            self._warmup_batch = n
            with SavedTensorMemory(est.module_.parameters()) as mem:
                measured()
            est.peak_activation_bytes_ = int(mem.peak_bytes)
            self._measure_saved = False
        else:
            measured()
        return stats

    def _resident_tensors(self, X, y):
        """Tensors a step finds alive: weights, buffers, gradients, optimizer state, the batch.

        A generator, so that no list keeps a gradient alive after ``zero_grad`` frees it.
        """
        est = self.estimator
        for p in est.module_.parameters():
            yield p
            if p.grad is not None:
                yield p.grad
        yield from est.module_.buffers()
        for state in est.optimizer_.state.values():
            yield from (v for v in state.values() if isinstance(v, torch.Tensor))
        yield from (t for t in tree_leaves((X, y)) if isinstance(t, torch.Tensor))

    def _step(self, X, y):
        """One optimisation step: every loss the estimator yields is backpropagated, then one step."""
        est = self.estimator
        est.optimizer_.zero_grad(set_to_none=True)
        losses = iter(est._train_losses(X, y, self.phase))
        stats, total = {}, None
        units = self.units or ()
        i = -1
        while True:
            i += 1
            # the forward (and the code after the previous yield) runs inside next(); under DDP
            # the i-th loss runs inside the forward of the i-th unit's wrapper
            with self._forward_context():
                if i < len(units):
                    item = units[i](lambda: next(losses, None))
                else:
                    item = next(losses, None)
            if item is None:
                if 0 < i < len(units):
                    raise RuntimeError(
                        f"{type(est).__name__}._train_losses yielded {i} losses but "
                        f"_distributed_units declares {len(units)} units, one per loss.")
                break
            if units and i >= len(units):
                raise RuntimeError(
                    f"{type(est).__name__}._train_losses yielded more losses than the "
                    f"{len(units)} units of _distributed_units; each loss needs its unit, or its "
                    "gradients would not be averaged across processes.")
            loss, terms = item
            self._backward(loss)
            stats.update(terms)
            total = loss.detach() if total is None else total + loss.detach()
        if total is None:
            raise RuntimeError(f"{type(est).__name__}._train_losses yielded no loss.")
        self._optimizer_step()
        stats.setdefault("loss", total)
        return stats

    def _forward_context(self):
        """Context of every forward of the fit: autocast at the estimator's ``precision``."""
        return autocast(self.estimator.precision, self.estimator.device_)

    def _backward(self, loss):
        """Backpropagate one loss: weighted by this process's share, scaled for float16."""
        if self._loss_weight != 1.0:
            loss = loss * self._loss_weight
        if self.scaler is not None:
            loss = self.scaler.scale(loss)
        loss.backward()

    def _optimizer_step(self):
        """Apply the accumulated gradients (unscaled first, and skipped on overflow, in float16)."""
        optimizer = self.estimator.optimizer_
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    # ------------------------------------------------------------ callbacks
    def _notify(self, hook, **kwargs):
        for callback in self.callbacks:
            # checkpoints, loggers and progress bars: one process writes
            if self.is_main or not getattr(callback, "rank_zero_only", False):
                getattr(callback, hook)(self.estimator, trainer=self, **kwargs)

    # ---------------------------------------------------------- checkpoints
    def snapshot(self):
        """Where the fit stands and the callbacks' states: what a checkpoint needs besides weights.

        Returns
        -------
        state : dict or None
            None while an epoch is running (a checkpoint is only resumable at
            an epoch boundary).
        """
        if self.in_epoch:
            return None
        index = self.phase_index
        epoch = self.epoch_in_phase
        if self.phase is None:  # before the first phase began
            index, epoch = 0, 0
        return {
            "position": {"phases": [p.name for p in self.phases], "phase": index, "epoch": epoch,
                         "stopped": bool(self.should_stop), "stop_fit": bool(self.stop_fit)},
            "split_seed": self.split_seed,
            "callbacks": [{"class": type(c).__qualname__, "state": c.state_dict()}
                          for c in self.callbacks],
        }
