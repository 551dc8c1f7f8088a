"""Training memory: saved activations, and the peak of everything a step holds.

Local learning saves memory because each module's autograd graph is freed by
its own ``backward()`` before the next module runs. Two figures show it:

* :class:`SavedTensorMemory`, the peak of *live saved tensors*: every tensor
  that autograd keeps for backward passes through a ``pack`` hook; we count
  its storage when it is packed and uncount it when autograd drops it. This is
  the part local learning cuts, the same on every device.
* :func:`step_peak_memory`, the peak of *all* bytes a training step holds
  (weights, gradients, optimizer state, activations, gradients of
  activations, auxiliary temporaries): ``torch.cuda.max_memory_allocated``
  on CUDA, :class:`LiveTensorMemory` elsewhere. This is memory as users
  measure it, minus what the allocator caches.
"""

import weakref

import torch
from torch.autograd.graph import saved_tensors_hooks
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

__all__ = ["LiveTensorMemory", "SavedTensorMemory", "cuda_peak_memory", "step_peak_memory"]


class _Saved:
    """Handle autograd stores instead of the tensor; uncounts it when freed."""

    __slots__ = ("tensor", "_tracker", "_key")

    def __init__(self, tensor, tracker, key):
        self.tensor = tensor
        self._tracker = tracker
        self._key = key

    def __del__(self):
        self._tracker._release(self._key)


class SavedTensorMemory:
    """Context manager measuring the peak bytes of saved activations.

    Storages are deduplicated (views, in-place results and tensors saved by
    several ops count once) and the storages of ``exclude`` (the model's
    parameters, which convolutions and linear layers save for the input
    gradient) are not counted.

    Parameters
    ----------
    exclude : iterable of torch.Tensor, default=()
        Tensors whose storage is not an activation, usually
        ``model.parameters()``.

    Attributes
    ----------
    peak_bytes : int
        Largest number of bytes saved for backward that were alive at the same
        time while the context was active.
    current_bytes : int
        Bytes still saved (0 once every graph has been freed).

    Examples
    --------
    >>> import torch
    >>> lin = torch.nn.Linear(4, 3)
    >>> with SavedTensorMemory(lin.parameters()) as mem:
    ...     lin(torch.ones(8, 4)).relu().sum().backward()
    >>> mem.peak_bytes  # input 8 x 4 (for the weight gradient) + ReLU output 8 x 3, float32
    224
    """

    def __init__(self, exclude=()):
        self._excluded = {t.untyped_storage().data_ptr() for t in exclude}
        self._refs = {}
        self._sizes = {}
        self.current_bytes = 0
        self.peak_bytes = 0
        self._hooks = saved_tensors_hooks(self._pack, self._unpack)

    def _pack(self, tensor):
        storage = tensor.untyped_storage()
        ptr = storage.data_ptr()
        if ptr in self._excluded or storage.nbytes() == 0:
            return tensor
        key = (tensor.device.type, tensor.device.index, ptr)
        count = self._refs.get(key, 0)
        if count == 0:
            self._sizes[key] = storage.nbytes()
            self.current_bytes += storage.nbytes()
            self.peak_bytes = max(self.peak_bytes, self.current_bytes)
        self._refs[key] = count + 1
        return _Saved(tensor, self, key)

    @staticmethod
    def _unpack(saved):
        return saved.tensor if isinstance(saved, _Saved) else saved

    def _release(self, key):
        count = self._refs.get(key, 0) - 1
        if count > 0:
            self._refs[key] = count
        elif count == 0:
            del self._refs[key]
            self.current_bytes -= self._sizes.pop(key)

    def __enter__(self):
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self._hooks.__exit__(*exc)
        return False


def cuda_peak_memory(step, device):
    """Peak CUDA memory allocated while running ``step()`` once.

    Call it after a warm-up step so that optimizer state and library
    workspaces already exist and the number reflects one training step.

    Parameters
    ----------
    step : callable
        Runs one training step.
    device : torch.device
        A CUDA device.

    Returns
    -------
    peak : int
        ``torch.cuda.max_memory_allocated(device)`` after the step, in bytes.
    """
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device))


class LiveTensorMemory(TorchDispatchMode):
    """Context manager measuring the peak bytes held by live tensors on one device.

    Every tensor an operator returns inside the context (forward, backward
    and optimizer operators alike: it is a
    ``torch.utils._python_dispatch.TorchDispatchMode``) is counted by
    its storage when the storage is first seen, and uncounted when the
    storage is freed (a weak-reference finalizer on the storage). Views and
    in-place results share their storage and count once. Tensors alive before
    the context (``resident``: weights, gradients, optimizer state, the
    minibatch) are counted from the start, and uncounted if they are freed
    inside it.

    What the C allocator does with freed memory does not enter: glibc keeps
    freed blocks in its arenas and hands them back to the system only partly,
    so the resident memory of a process stays higher than this figure; the
    figure is what the program holds, the memory a well-behaved allocator
    (or a GPU caching allocator's ``memory_allocated``) would report. Not seen:
    scratch buffers an operator allocates and frees internally, and tensors
    created by other threads.

    Parameters
    ----------
    resident : iterable of torch.Tensor, default=()
        Tensors alive at the start that belong to the measurement.
    device : str or torch.device, default="cpu"
        Only storages on this device type are counted.

    Attributes
    ----------
    peak_bytes : int
        Largest number of bytes held by live tensors at the same time.
    current_bytes : int
        Bytes held now (by the storages seen and not freed yet).

    Examples
    --------
    >>> import torch
    >>> lin = torch.nn.Linear(1000, 10)
    >>> x = torch.ones(100, 1000)
    >>> with LiveTensorMemory(resident=[x, *lin.parameters()]) as mem:
    ...     y = torch.relu(lin(x))
    >>> mem.peak_bytes == 4 * (100 * 1000 + 10 * 1000 + 10 + 100 * 10 * 2)
    True
    """

    def __init__(self, resident=(), device="cpu"):
        super().__init__()
        self._device_type = torch.device(device).type
        self._sizes = {}
        self._finalizers = {}
        self.current_bytes = 0
        self.peak_bytes = 0
        for tensor in resident:
            self._see(tensor)
        self.peak_bytes = self.current_bytes

    def _see(self, tensor):
        if not isinstance(tensor, torch.Tensor) or tensor.device.type != self._device_type:
            return
        try:
            storage = tensor.untyped_storage()
        except (RuntimeError, NotImplementedError):  # sparse or nested: no single storage
            return
        key = storage._cdata
        size = storage.nbytes()
        old = self._sizes.get(key)
        if old is None:
            if size == 0:
                return
            self._finalizers[key] = weakref.finalize(storage, self._release, key)
            old = 0
        self._sizes[key] = size
        self.current_bytes += size - old  # a known storage may have been resized
        self.peak_bytes = max(self.peak_bytes, self.current_bytes)

    def _release(self, key):
        self._finalizers.pop(key, None)
        self.current_bytes -= self._sizes.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        """Run ``func`` and count the storages of its outputs (see the class docstring)."""
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            self._see(leaf)
        return out

    def __exit__(self, *exc):
        result = super().__exit__(*exc)
        # storages still alive must not call back into this object after the measurement
        for finalizer in self._finalizers.values():
            finalizer.detach()
        self._finalizers.clear()
        return result


def step_peak_memory(step, device, resident=()):
    """Peak bytes held while ``step()`` runs: what one training step needs.

    On CUDA, ``torch.cuda.max_memory_allocated`` over the step (stats reset
    before it, see :func:`~neural.memory.cuda_peak_memory`): every tensor on the device, the
    caching allocator's free blocks excluded. Elsewhere, the peak of bytes held
    by live tensors, measured by :class:`~neural.memory.LiveTensorMemory` with ``resident``
    counted from the start, so that the C allocator's caching does not count
    either. Call it after a warm-up step, so that optimizer state already
    exists and the figure is the one of every later step.

    Parameters
    ----------
    step : callable
        Runs one training step.
    device : torch.device
        Device of the training.
    resident : iterable of torch.Tensor, default=()
        Tensors alive before the step that it uses (weights, gradients,
        optimizer state, buffers, the minibatch); ignored on CUDA, where the
        allocator knows them.

    Returns
    -------
    peak : int
        Bytes.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return cuda_peak_memory(step, device)
    with LiveTensorMemory(resident, device) as mem:
        step()
    return int(mem.peak_bytes)
