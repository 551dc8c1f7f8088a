"""Activation memory: peak bytes of the tensors autograd saves for backward.

Local learning saves memory because each module's autograd graph is freed by
its own ``backward()`` before the next module runs. The quantity that shows
this, on any device, is the peak of *live saved tensors*: every tensor that
autograd keeps for backward passes through a ``pack`` hook; we count its
storage when it is packed and uncount it when autograd drops it.
"""

import torch
from torch.autograd.graph import saved_tensors_hooks

__all__ = ["SavedTensorMemory", "cuda_peak_memory"]


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
