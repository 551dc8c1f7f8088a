"""Batch norm over the global minibatch of a distributed fit.

``batch_size`` is the global minibatch: every process trains on a shard of
it. Batch norm must then normalise with the statistics of the whole global
batch, not of the shard, or a fit on 2 processes is a different model from
the fit on one. :class:`torch.nn.SyncBatchNorm` does this on GPUs only;
:class:`CPUSyncBatchNorm` does the same on the CPU (and any device) with
torch.distributed's differentiable all-reduce. :func:`synchronized_batchnorm`
swaps them in for the duration of a fit, sharing the original layers'
parameters and running statistics, and puts the original layers back.
"""

import contextlib

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["CPUSyncBatchNorm", "synchronized_batchnorm"]


class _AllReduceSum(torch.autograd.Function):
    """Sum over the processes, differentiable: the gradient is summed over the processes too.

    As in the autograd function of :class:`torch.nn.SyncBatchNorm`: every
    process's output depends on every process's input. (torch's
    ``torch.distributed.nn.functional.all_reduce`` does this but is deprecated
    in torch 2.13; its replacement in ``torch.distributed._functional_collectives``
    took 40% longer per call here.)
    """

    @staticmethod
    def forward(ctx, tensor):
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad


class CPUSyncBatchNorm(_BatchNorm):
    """Batch norm whose training statistics are those of all processes' inputs together.

    Every process sums its inputs, their squares and its count per channel
    in float64; one :func:`torch.distributed.all_reduce` (whose backward
    all-reduces the gradients, see :class:`_AllReduceSum`) gives the
    global mean and variance, so the
    output and its gradient are those of batch norm over the global batch.
    (float64 keeps ``E[x^2] - E[x]^2`` exact to about 1e-9 relative unless the
    mean exceeds the standard deviation ten-thousandfold.) In eval mode, or
    outside a process group of more than one process, it is ordinary batch
    norm.

    Parameters
    ----------
    num_features : int
        Channels (dimension 1 of the input).
    eps : float, default=1e-5
        Added to the variance.
    momentum : float or None, default=0.1
        Running statistics update (None: cumulative average).
    affine : bool, default=True
        Learnable scale and shift.
    track_running_stats : bool, default=True
        Keep running statistics for eval mode.
    """

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"expected an input with at least 2 dimensions; got {input.dim()}.")

    def forward(self, input):
        self._check_input_dim(input)
        synced = (self.training or not self.track_running_stats) and (
            dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1)
        if not synced:
            return super().forward(input)
        channels = input.shape[1]
        dims = [0, *range(2, input.dim())]
        shape = [1, channels] + [1] * (input.dim() - 2)
        x = input.double()
        count = torch.full((1,), input.numel() / channels, dtype=torch.float64, device=x.device)
        local = torch.cat([x.sum(dims), (x * x).sum(dims), count])
        totals = _AllReduceSum.apply(local)
        n = totals[-1]
        mean = totals[:channels] / n
        var = (totals[channels:-1] / n - mean * mean).clamp_min(0.0)
        out = ((x - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)).to(torch.float32)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.training and self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), float(n.detach()))
        return out.to(input.dtype) if input.dtype != torch.float32 else out

    @torch.no_grad()
    def _update_running_stats(self, mean, var, n):
        self.num_batches_tracked.add_(1)
        factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                  else self.momentum)
        unbiased = var * (n / max(n - 1.0, 1.0))
        self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased.to(self.running_var.dtype), alpha=factor)


def _synced(bn, device):
    cls = nn.SyncBatchNorm if device.type == "cuda" else CPUSyncBatchNorm
    new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    # the same tensors: updates made during the fit are the original layer's
    if bn.affine:
        new.weight, new.bias = bn.weight, bn.bias
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        setattr(new, name, getattr(bn, name))
    new.train(bn.training)
    return new


@contextlib.contextmanager
def synchronized_batchnorm(module, device):
    """Within the context, every batch-norm layer of ``module`` normalises over the global batch.

    Parameters
    ----------
    module : torch.nn.Module
        The estimator's module; its batch-norm layers are replaced in place
        and restored on exit (their parameters and statistics are shared,
        so the trained values stay).
    device : torch.device
        The training device: :class:`torch.nn.SyncBatchNorm` on CUDA,
        :class:`CPUSyncBatchNorm` elsewhere.

    Yields
    ------
    n_layers : int
        Number of layers replaced.
    """
    swaps, made = [], {}
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _BatchNorm) and not isinstance(
                    child, (nn.SyncBatchNorm, CPUSyncBatchNorm)):
                if id(child) not in made:
                    made[id(child)] = _synced(child, device)
                swaps.append((parent, name, child))
    for parent, name, child in swaps:
        parent._modules[name] = made[id(child)]
    try:
        yield len(swaps)
    finally:
        for parent, name, child in reversed(swaps):
            child.train(parent._modules[name].training)
            parent._modules[name] = child
