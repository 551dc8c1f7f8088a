"""Multi-process training with torch.distributed: process group, sharding, DDP units, collectives.

A fit is distributed when the estimator's ``distributed`` is ``"auto"`` and
either a default process group of more than one process exists, or the
process was launched by ``torchrun`` with ``WORLD_SIZE`` > 1 (then the
group is initialised here from torchrun's environment: NCCL for CUDA, gloo
for the CPU). Every process holds the whole data set and the same model;
the trainer then

* cuts every *global* minibatch (``batch_size`` samples, the same plan on
  every process, from the same seeded stream) into one contiguous shard
  per process (:func:`shard`);
* runs each loss through :class:`~torch.nn.parallel.DistributedDataParallel`
  (DDP): the estimator names the modules DDP wraps, one per loss its
  ``_train_losses`` yields (:func:`wrap_units`), and DDP averages their
  gradients during backward;
* reduces what must agree: epoch statistics, validation outputs, the stop
  decision, rank 0's random streams (:class:`DistContext`).

Only torch.distributed's own machinery communicates (DDP's reducer and the
collectives of :mod:`torch.distributed`).
"""

import atexit
import datetime
import os

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["DistContext", "distributed_context", "training_device", "shard", "wrap_units",
           "is_secondary_process", "derived_seed", "PROCESS_GROUP_TIMEOUT"]

# how long a collective waits for the other processes before it raises (an upper bound on
# any wait; a process that fails under torchrun is stopped by torchrun much sooner)
PROCESS_GROUP_TIMEOUT = datetime.timedelta(minutes=30)


def _launched_world_size():
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def _active(setting):
    return setting != "off" and dist.is_available() and dist.is_initialized()


def is_secondary_process(setting="auto"):
    """Whether this process is a rank other than 0 of a distributed job.

    Parameters
    ----------
    setting : {"auto", "off"}, default="auto"
        The estimator's ``distributed`` (``"off"``: never).

    Returns
    -------
    secondary : bool
        True in the processes that must not write files.
    """
    return _active(setting) and dist.get_world_size() > 1 and dist.get_rank() != 0


def _init_from_environment(device):
    """Initialise the default group from torchrun's variables (RANK, WORLD_SIZE, ...)."""
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(_local_device(device))
    dist.init_process_group(backend, timeout=PROCESS_GROUP_TIMEOUT)
    atexit.register(_destroy)


def _destroy():
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _local_device(device):
    """This process's GPU: an explicit index, else LOCAL_RANK (torchrun), else the current one."""
    if device.index is not None:
        return device
    if "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]) % torch.cuda.device_count())
    return torch.device("cuda", torch.cuda.current_device())


def distributed_context(setting, device):
    """The distributed context of a fit, or None to train in this process alone.

    Parameters
    ----------
    setting : {"auto", "off"}
        The estimator's ``distributed``.
    device : torch.device
        The device the estimator's ``device`` resolves to (chooses the
        backend when the group is initialised here).

    Returns
    -------
    context : DistContext or None
        None with ``"off"``, or without a group of more than one process.
    """
    if setting == "off" or not dist.is_available():
        return None
    if not dist.is_initialized():
        if _launched_world_size() <= 1:
            return None
        _init_from_environment(device)
    if dist.get_world_size() <= 1:
        return None
    return DistContext()


def training_device(device, context):
    """The device of this process: under DDP, ``"cuda"`` means this process's own GPU.

    Parameters
    ----------
    device : torch.device
        The resolved ``device`` parameter.
    context : DistContext or None
        The fit's distributed context.

    Returns
    -------
    device : torch.device
        ``cuda:LOCAL_RANK`` for an unindexed CUDA device under DDP, else ``device``.

    Raises
    ------
    ValueError
        If the process group's backend cannot serve the device (NCCL with the CPU).
    """
    if context is None:
        return device
    if device.type == "cuda":
        device = _local_device(device)
        torch.cuda.set_device(device)
    elif context.backend == "nccl":
        raise ValueError(
            f"the process group uses the NCCL backend, which needs CUDA tensors, but the estimator "
            f"trains on {device}; train on 'cuda', or initialise the group with backend='gloo'."
        )
    return device


def shard(batch, rank, world_size):
    """This process's contiguous share of a global minibatch (sizes differ by at most one).

    Parameters
    ----------
    batch : list of int
        Dataset indices of the global minibatch.
    rank, world_size : int
        This process and the number of processes.

    Returns
    -------
    indices : list of int
        The indices this process trains on.
    """
    start, stop = shares(len(batch), world_size)[rank]
    return batch[start:stop]


def shares(n, world_size):
    """Contiguous shares of ``range(n)`` (sizes differ by at most one): ``(start, stop)`` of
    every process."""
    cuts = [r * n // world_size for r in range(world_size + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


class _Unit(nn.Module):
    """What one DDP wrapper holds: parts of the estimator's module (shared, not copied).

    Its forward runs the function it is given, so that whatever code computes
    a loss (the estimator's ``_train_losses``, calling any method of the
    module) runs inside DDP's forward and its backward is all-reduced.
    """

    def __init__(self, parts):
        super().__init__()
        self.parts = nn.ModuleList(parts)

    def forward(self, fn):
        return fn()


def _trainable(modules):
    seen = {}
    for m in modules:
        for p in m.parameters():
            if p.requires_grad:
                seen[id(p)] = p
    return seen


def wrap_units(units, optimizer, device, owner):
    """One :class:`~torch.nn.parallel.DistributedDataParallel` per unit of the estimator's module.

    Parameters
    ----------
    units : list of torch.nn.Module or list of list of torch.nn.Module
        What each loss of a step trains (the estimator's ``_distributed_units``).
    optimizer : torch.optim.Optimizer
        The estimator's optimizer: the units must hold exactly its parameters,
        each in one unit.
    device : torch.device
        This process's device.
    owner : str
        Estimator name, for messages.

    Returns
    -------
    wrappers : list of DistributedDataParallel
        Call ``wrappers[i](fn)`` to run ``fn`` (the i-th loss) under DDP.

    Raises
    ------
    RuntimeError
        If the units share a parameter or leave one of the optimizer's out
        (its gradient would not be averaged and the processes would drift apart).
    """
    groups = [list(u) if isinstance(u, (list, tuple, nn.ModuleList)) else [u] for u in units]
    owned = {}
    for k, group in enumerate(groups):
        for key in _trainable(group):
            if key in owned:
                raise RuntimeError(f"{owner}._distributed_units: units {owned[key]} and {k} "
                                   "share a parameter; each must train its own.")
            owned[key] = k
    optimized = {id(p) for g in optimizer.param_groups for p in g["params"]}
    if optimized - set(owned):
        raise RuntimeError(f"{owner}._distributed_units leaves {len(optimized - set(owned))} "
                           "parameter(s) of the optimizer out of every unit.")
    kwargs = {"find_unused_parameters": True}  # a loss may skip parts (P2C without pairs, DToP)
    if device.type == "cuda":
        kwargs.update(device_ids=[device.index], output_device=device.index)
    return [DistributedDataParallel(_Unit(group), **kwargs) for group in groups]


class DistContext:
    """The processes of a distributed fit and the collectives the trainer needs.

    Attributes
    ----------
    rank : int
        This process's rank.
    world_size : int
        Number of processes.
    backend : str
        The process group's backend (``"gloo"``, ``"nccl"``).
    """

    def __init__(self):
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.backend = str(dist.get_backend())

    @property
    def is_main(self):
        """Whether this is rank 0, the process that writes files (bool)."""
        return self.rank == 0

    @property
    def _device(self):
        # NCCL moves CUDA tensors only
        if self.backend == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def broadcast(self, obj):
        """Rank 0's ``obj`` (any picklable object) in every process."""
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather(self, obj):
        """Every process's ``obj``, in rank order."""
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def sum(self, values):
        """Element-wise sum over the processes of a list of floats (float64)."""
        t = torch.tensor(values, dtype=torch.float64, device=self._device)
        dist.all_reduce(t)
        return t.cpu().tolist()

    def any(self, *flags):
        """Whether each flag is set in any process (the one decision every process takes)."""
        t = torch.tensor([float(bool(f)) for f in flags], device=self._device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return tuple(bool(v) for v in t.cpu().tolist())

    def gather_rows(self, local, counts):
        """Concatenate every process's rows of a tensor, in rank order.

        Parameters
        ----------
        local : torch.Tensor
            This process's rows (``counts[rank]`` of them).
        counts : list of int
            Rows of every process (each at least 1, so that every process
            knows the trailing shape).

        Returns
        -------
        rows : torch.Tensor
            All rows, on the CPU.
        """
        most = max(counts)
        padded = torch.zeros((most, *local.shape[1:]), dtype=local.dtype, device=self._device)
        padded[: len(local)] = local.to(self._device)
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded)
        return torch.cat([p[:c] for p, c in zip(parts, counts)]).cpu()

    def split(self, n):
        """Contiguous shares of ``range(n)``: ``(start, stop)`` of every process."""
        return shares(n, self.world_size)


def derived_seed(seed, *keys):
    """A seed in [0, 2**31) from a seed and integers (per-process, per-epoch streams)."""
    return int(np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(1)[0] >> 1)
