"""Datasets and batching of the neural estimators: the one place a DataLoader is built.

Every estimator turns its training input into a map-style
:class:`torch.utils.data.Dataset` of ``(x, y)`` items (``x`` and ``y`` are
arrays, tensors or dicts of them). Arrays held in memory become an
:class:`ArrayDataset`, which hands out whole batches by fancy indexing
(``__getitems__``), so batching an in-memory array costs what a hand-written
loop costs. A user's dataset is read item by item through :class:`ItemDataset`,
which applies the estimator's per-item checks and conversions and lets
:func:`torch.utils.data.default_collate` stack the items: both give the same
batches for the same data.

:func:`make_loader` is the one constructor of :class:`~torch.utils.data.DataLoader`
(training, validation, prediction and data passes), and :func:`epoch_batches`
the one batch planner (the shuffled order comes from the estimator's own
NumPy stream, so the global torch RNG is never touched and a resumed fit
replays the same order).
"""

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, default_collate

__all__ = [
    "ArrayDataset",
    "ItemDataset",
    "Batch",
    "is_dataset",
    "check_map_dataset",
    "epoch_batches",
    "sequential_batches",
    "make_loader",
    "iter_items",
    "to_device",
]


def is_dataset(obj):
    """Whether ``obj`` is a torch dataset (as opposed to array-like input)."""
    return isinstance(obj, Dataset)


def check_map_dataset(dataset, name="X"):
    """Check that ``dataset`` is a sized map-style dataset; return its length.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        The dataset.
    name : str, default="X"
        Name used in messages.

    Returns
    -------
    n : int
        Number of items.

    Raises
    ------
    TypeError
        For an iterable-style dataset or one without ``__len__``.
    ValueError
        For an empty dataset.
    """
    if isinstance(dataset, IterableDataset):
        raise TypeError(f"{name} is an IterableDataset; the estimators need a map-style dataset "
                        "(__getitem__ and __len__) so that they can shuffle and resume.")
    try:
        n = len(dataset)
    except TypeError:
        raise TypeError(f"{name} ({type(dataset).__name__}) has no __len__; the estimators need a "
                        "map-style dataset with __getitem__ and __len__.") from None
    if n == 0:
        raise ValueError(f"{name} is an empty dataset; pass at least one (x, y) item.")
    return n


class Batch(tuple):
    """A batch already stacked by a dataset's ``__getitems__`` (collation passes it through)."""

    __slots__ = ()


def _take(a, idx):
    if a is None:
        return None
    if isinstance(a, dict):
        return {k: _take(v, idx) for k, v in a.items()}
    return torch.from_numpy(np.ascontiguousarray(a[idx]))


def _length(a):
    if isinstance(a, dict):
        return len(next(iter(a.values())))
    return len(a)


class ArrayDataset(Dataset):
    """``(x, y)`` items of arrays in memory, batched by fancy indexing.

    Parameters
    ----------
    x : ndarray or dict of str to ndarray
        Inputs, indexed on their first axis.
    y : ndarray or None, default=None
        Targets (None for inference).
    """

    def __init__(self, x, y=None):
        self.x = x
        self.y = y
        n = _length(x)
        if y is not None and len(y) != n:
            raise ValueError(f"x has {n} samples but y has {len(y)}.")
        self._n = n

    def __len__(self):
        return self._n

    def __getitem__(self, i):
        x, y = self.__getitems__([i])
        return (
            {k: v[0] for k, v in x.items()} if isinstance(x, dict) else x[0],
            None if y is None else y[0],
        )

    def __getitems__(self, indices):
        idx = np.asarray(indices, dtype=np.int64)
        return Batch((_take(self.x, idx), _take(self.y, idx)))

    @property
    def targets(self):
        """Integer 1-D targets (for stratified splits), else None."""
        y = self.y
        if isinstance(y, np.ndarray) and y.ndim == 1 and y.dtype.kind in "iu":
            return y
        return None


class ItemDataset(Dataset):
    """A user's dataset seen through a per-item conversion.

    Parameters
    ----------
    source : torch.utils.data.Dataset
        Map-style dataset of raw items.
    convert : callable
        ``convert(item, index) -> (x, y)`` of NumPy arrays (or dicts of them):
        the estimator's checks and encodings of one item.
    targets : ndarray or None, default=None
        Encoded 1-D targets of all items, when known (for stratified splits).
    """

    def __init__(self, source, convert, targets=None):
        self.source = source
        self.convert = convert
        self.targets = targets

    def __len__(self):
        return len(self.source)

    def __getitem__(self, i):
        return self.convert(self.source[i], int(i))


def collate(items):
    """Stack a list of items with torch's default collation; pass pre-stacked batches through."""
    if isinstance(items, Batch):
        return tuple(items)
    return tuple(default_collate(items))


def _identity(item):
    return item


def n_batches(n, batch_size, min_last=2):
    """Number of minibatches :func:`epoch_batches` cuts ``n`` samples into (same arguments)."""
    bs = max(1, min(batch_size, n))
    k = -(-n // bs)
    return k - 1 if k > 1 and n - (k - 1) * bs < min_last else k


def epoch_batches(indices, batch_size, rng=None, *, min_last=2):
    """Cut ``indices`` into minibatches, in an order shuffled by ``rng``.

    Parameters
    ----------
    indices : ndarray of int
        Dataset indices to cover once.
    batch_size : int
        Largest batch (clipped to ``len(indices)``).
    rng : numpy.random.RandomState or None, default=None
        Shuffles the order; None keeps it.
    min_last : int, default=2
        Merge a last batch of fewer samples into the previous one (batch
        norm cannot train on one sample; under torch.distributed every
        process needs a sample of every batch). 1 never merges.

    Returns
    -------
    batches : list of list of int
        Dataset indices of every batch.
    """
    indices = np.asarray(indices, dtype=np.int64)
    n = len(indices)
    bs = max(1, min(batch_size, n))
    order = rng.permutation(n) if rng is not None else np.arange(n)
    cuts = list(range(0, n, bs))[:n_batches(n, batch_size, min_last)]
    return [indices[order[a:b]].tolist() for a, b in zip(cuts, cuts[1:] + [n])]


def sequential_batches(n, batch_size):
    """Consecutive batches ``[0, bs), [bs, 2 bs), ...`` of ``range(n)`` (inference)."""
    return [list(range(a, min(a + batch_size, n))) for a in range(0, n, batch_size)]


def make_loader(dataset, batches, *, num_workers=0, device=None, seed=0):
    """The loader of every pass over data: training, validation, prediction.

    With worker processes it is a :class:`~torch.utils.data.DataLoader`
    over the planned batches; in the calling process (``num_workers=0``) an
    equivalent lighter iterator (same batches, same collation, pinned memory
    for CUDA), which saves the DataLoader's per-batch cost on small batches.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Map-style dataset of ``(x, y)`` items.
    batches : list of list of int
        The batches, as planned by :func:`epoch_batches` or :func:`sequential_batches`.
    num_workers : int, default=0
        Worker processes (0: load in the calling process).
    device : torch.device or None, default=None
        Where the batches go; CUDA pins host memory.
    seed : int, default=0
        Seed of the loader's own generator (the workers' seeds derive from
        it), so that loading never draws from the global torch RNG.

    Returns
    -------
    loader : iterable
        Yields ``(x, y)`` batches on the host.
    """
    pin = device is not None and device.type == "cuda"
    if num_workers == 0:
        return _InProcessLoader(dataset, batches, pin)
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_sampler=batches,
        collate_fn=collate,
        num_workers=num_workers,
        pin_memory=pin,
        generator=generator,
    )


class _InProcessLoader:
    """What a single-process DataLoader does: fetch a batch, collate it, pin it if asked."""

    def __init__(self, dataset, batches, pin):
        self.dataset, self.batches, self.pin = dataset, batches, pin
        self._batched = callable(getattr(dataset, "__getitems__", None))

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            items = (self.dataset.__getitems__(batch) if self._batched
                     else [self.dataset[i] for i in batch])
            out = collate(items)
            yield _pin(out) if self.pin else out


def _pin(batch):
    """Page-locked copies of the tensors of a batch (fast, asynchronous copies to CUDA)."""
    if isinstance(batch, torch.Tensor):
        return batch.pin_memory()
    if isinstance(batch, dict):
        return {k: _pin(v) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_pin(v) for v in batch)
    return batch


def iter_items(dataset, num_workers=0):
    """Iterate over the raw items of ``dataset`` in order (data passes: labels, statistics).

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Map-style dataset.
    num_workers : int, default=0
        Worker processes reading items ahead.

    Returns
    -------
    items : iterable
        The items, unchanged.
    """
    if num_workers == 0:
        return (dataset[i] for i in range(len(dataset)))
    generator = torch.Generator()
    generator.manual_seed(0)
    return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=num_workers,
                      collate_fn=_identity, generator=generator)


def to_device(batch, device):
    """Move a tensor, or a tuple / list / dict of them, to ``device`` (None passes through)."""
    if batch is None:
        return None
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch
