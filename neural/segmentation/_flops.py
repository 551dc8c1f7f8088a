"""Analytic FLOP counts of the DToP ViT, and a cross-check with torch's counter.

FLOPs are counted as ``torch.utils.flop_counter`` counts them: 2 per
multiply-add of the matrix products (patch-embedding convolution, linear
layers, the two attention products); biases, normalisation, softmax, GELU,
residual additions and the bilinear upsampling are not counted (they are a
few percent of the total and torch does not count them either).
"""

import numpy as np
import torch

__all__ = ["block_flops", "dtop_flops", "unpruned_flops", "count_flops"]


def block_flops(n, dim, hidden):
    """Count the FLOPs of one transformer block on ``n`` tokens.

    Parameters
    ----------
    n : int or ndarray
        Tokens in the sequence.
    dim : int
        Token width ``d``.
    hidden : int
        MLP hidden width ``h``.

    Returns
    -------
    flops : int or ndarray
        ``6nd^2`` (qkv) ``+ 2n^2 d`` (QK^T) ``+ 2n^2 d`` (AV) ``+ 2nd^2``
        (projection) ``+ 4ndh`` (MLP).
    """
    n = np.asarray(n, dtype=np.int64)
    return 8 * n * dim * dim + 4 * n * n * dim + 4 * n * dim * hidden


def dtop_flops(n_active, n_tokens, *, in_channels, patch_size, dim, hidden, n_classes,
               blocks_per_stage, aux_heads=True):
    """Count the FLOPs per image of a pruned forward from its active tokens per stage.

    Parameters
    ----------
    n_active : array-like of shape (n_images, n_stages)
        Tokens processed by the blocks and the head of each stage.
    n_tokens : int
        Tokens per image (all of them go through the patch embedding).
    in_channels, patch_size, dim, hidden, n_classes : int
        Model sizes.
    blocks_per_stage : sequence of int
        Transformer blocks in each stage.
    aux_heads : bool, default=True
        Count the heads of all stages (else only the final head).

    Returns
    -------
    flops : ndarray of shape (n_images,)
        FLOPs per image.
    """
    n_active = np.atleast_2d(np.asarray(n_active, dtype=np.int64))
    total = np.full(len(n_active), 2 * n_tokens * dim * in_channels * patch_size**2, dtype=np.int64)
    for s, n_blocks in enumerate(blocks_per_stage):
        n = n_active[:, s]
        total += n_blocks * block_flops(n, dim, hidden)
        if aux_heads or s == len(blocks_per_stage) - 1:
            total += 2 * n * dim * n_classes
    return total


def unpruned_flops(n_tokens, *, in_channels, patch_size, dim, hidden, n_classes, blocks_per_stage):
    """Count the FLOPs per image of the ordinary segmenter (all tokens, final head only).

    Parameters
    ----------
    n_tokens : int
        Tokens per image.
    in_channels, patch_size, dim, hidden, n_classes : int
        Model sizes.
    blocks_per_stage : sequence of int
        Transformer blocks in each stage.

    Returns
    -------
    flops : int
        FLOPs per image.
    """
    full = [[n_tokens] * len(blocks_per_stage)]
    return int(dtop_flops(full, n_tokens, in_channels=in_channels, patch_size=patch_size, dim=dim,
                          hidden=hidden, n_classes=n_classes, blocks_per_stage=blocks_per_stage,
                          aux_heads=False)[0])


def count_flops(fn, *args, **kwargs):
    """Measure the FLOPs of ``fn(*args, **kwargs)`` with ``torch.utils.flop_counter``.

    Parameters
    ----------
    fn : callable
        Usually a module or one of its methods.
    *args, **kwargs
        Passed to ``fn`` (run under ``torch.no_grad``).

    Returns
    -------
    flops : int
        Total FLOPs counted by :class:`torch.utils.flop_counter.FlopCounterMode`.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    return int(counter.get_total_flops())
