"""Auxiliary networks: the local losses of DGL, InfoPro, AugLocal and MAN.

Every auxiliary network maps a module's output ``h`` (plus the batch's images
and labels) to a scalar loss; the module is trained by that loss alone.
"""

import copy
import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from ..backbones.resnet import BasicBlock, init_weights

__all__ = ["DGLAux", "InfoProAux", "AugLocalAux", "MANAux", "supervised_contrastive_loss"]


def supervised_contrastive_loss(features, y, temperature=0.07):
    """Supervised contrastive loss (Khosla et al., 2020) of one view per sample.

    For anchor i with positives P(i) (the other samples of its class)::

        l_i = -1/|P(i)| sum_{p in P(i)} log( exp(z_i.z_p / T) / sum_{a != i} exp(z_i.z_a / T) )

    averaged over the anchors that have at least one positive.

    Parameters
    ----------
    features : torch.Tensor of shape (n, d)
        Embeddings (L2-normalised here).
    y : torch.Tensor of shape (n,)
        Class indices.
    temperature : float, default=0.07
        Temperature T.

    Returns
    -------
    loss : torch.Tensor
        Scalar loss (0 when no sample has a positive).
    """
    z = F.normalize(features, dim=1)
    sim = z @ z.T / temperature
    self_mask = torch.eye(len(y), dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_mask, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    positives = (y[:, None] == y[None, :]) & ~self_mask
    n_pos = positives.sum(1)
    has_pos = n_pos > 0
    if not has_pos.any():
        return sim.new_zeros(()) + 0.0 * features.sum()
    pos_log_prob = log_prob.masked_fill(~positives, 0.0).sum(1)
    return -(pos_log_prob[has_pos] / n_pos[has_pos]).mean()


def _conv_bn_relu(cin, cout, kernel, stride=1):
    return [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    ]


class DGLAux(nn.Module):
    """DGL's "MLP-SR" auxiliary classifier, trained with cross-entropy.

    ``avg-pool to ceil(S/4)`` -> 3 x (1x1 conv + BN + ReLU) -> ``avg-pool to
    min(ceil(S/4), 2)`` -> flatten -> 2 x (linear + BN + ReLU) -> linear.

    Parameters
    ----------
    in_shape : tuple of int
        ``(C, H, W)`` of the module output.
    n_classes : int
        Number of classes.
    """

    def __init__(self, in_shape, n_classes):
        super().__init__()
        c, h, w = in_shape
        first = (math.ceil(h / 4), math.ceil(w / 4))
        second = (min(first[0], 2), min(first[1], 2))
        feat = c * second[0] * second[1]
        self.net = nn.Sequential(
            nn.AdaptiveAvgPool2d(first),
            *_conv_bn_relu(c, c, 1),
            *_conv_bn_relu(c, c, 1),
            *_conv_bn_relu(c, c, 1),
            nn.AdaptiveAvgPool2d(second),
            nn.Flatten(),
            nn.Linear(feat, feat, bias=False),
            nn.BatchNorm1d(feat),
            nn.ReLU(),
            nn.Linear(feat, feat, bias=False),
            nn.BatchNorm1d(feat),
            nn.ReLU(),
            nn.Linear(feat, n_classes),
        )
        init_weights(self)

    def forward(self, h, target, y):
        """Cross-entropy of the auxiliary logits (``target`` is unused).

        Parameters
        ----------
        h : torch.Tensor of shape (n, C, H, W)
            Output of the local module.
        target : torch.Tensor of shape (n, C_in, H_in, W_in) or None
            Input images scaled to [0, 1] (used by reconstruction losses).
        y : torch.Tensor of shape (n,)
            Class indices.

        Returns
        -------
        loss : torch.Tensor
            Scalar local loss.
        """
        return F.cross_entropy(self.net(h), y)


class InfoProAux(nn.Module):
    """InfoPro's local loss: image reconstruction + auxiliary classification.

    ``loss = lambda_recon * BCE(decoder(h), x01) + lambda_task * CE(head(h), y)``
    where ``x01`` is the input image scaled to [0, 1]. Decoder: bilinear
    upsampling to the input size (skipped when ``h`` already has it: with
    ``align_corners=True`` that upsampling is the identity) -> 3x3 conv (12
    channels) -> BN -> ReLU -> 3x3 conv to the image channels (logits; the
    sigmoid is inside the BCE). Head ``"1c2f"`` (InfoPro's default): 3x3 conv
    (2C channels, stride 2; C channels, stride 1 in the widest stage) -> BN ->
    ReLU -> global pool -> linear (``hidden``) -> ReLU -> linear. Head
    ``"2c2f"`` (MAN's default) adds a second 3x3 conv (stride 1) -> BN -> ReLU
    before the pooling. These are the reference code's sizes.

    Parameters
    ----------
    in_shape : tuple of int
        ``(C, H, W)`` of the module output.
    image_shape : tuple of int
        ``(C, H, W)`` of the network input.
    n_classes : int
        Number of classes.
    weights : tuple of float
        ``(lambda_recon, lambda_task)``.
    widest : bool
        Whether the module output is in the widest (last) stage.
    hidden : int, default=128
        Width of the hidden linear layer of the head.
    task_loss : {"ce", "contrast"}, default="ce"
        ``"ce"``: the head outputs logits, cross-entropy. ``"contrast"``: the
        head outputs a ``hidden``-dimensional embedding trained with the
        supervised contrastive loss (temperature 0.07), InfoPro's default.
    head : {"1c2f", "2c2f"}, default="1c2f"
        Number of convolutions ("c") and linear layers ("f") of the head.
    """

    def __init__(self, in_shape, image_shape, n_classes, weights, widest, hidden=128,
                 task_loss="ce", head="1c2f"):
        super().__init__()
        c = in_shape[0]
        self.image_size = tuple(image_shape[1:])
        self.lambda_recon, self.lambda_task = (float(w) for w in weights)
        self.decoder = nn.Sequential(
            nn.Conv2d(c, 12, 3, 1, 1),
            nn.BatchNorm2d(12),
            nn.ReLU(),
            nn.Conv2d(12, image_shape[0], 3, 1, 1),
        )
        if head not in ("1c2f", "2c2f"):
            raise ValueError(f"head must be '1c2f' or '2c2f'; got {head!r}.")
        cout, stride = (c, 1) if widest else (2 * c, 2)
        self.task_loss = task_loss
        n_out = hidden if task_loss == "contrast" else n_classes
        second = _conv_bn_relu(cout, cout, 3) if head == "2c2f" else []
        self.head = nn.Sequential(
            *_conv_bn_relu(c, cout, 3, stride),
            *second,
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(cout, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_out),
        )
        init_weights(self)

    def forward(self, h, target, y):
        """Weighted BCE reconstruction of ``target`` plus the head's task loss.

        Parameters
        ----------
        h : torch.Tensor of shape (n, C, H, W)
            Output of the local module.
        target : torch.Tensor of shape (n, C_in, H_in, W_in) or None
            Input images scaled to [0, 1] (used by reconstruction losses).
        y : torch.Tensor of shape (n,)
            Class indices.

        Returns
        -------
        loss : torch.Tensor
            Scalar local loss.
        """
        loss = h.new_zeros(())
        if self.lambda_recon:
            # at the input size already, the upsampling is the identity: skip a full-size copy
            up = h if tuple(h.shape[-2:]) == self.image_size else F.interpolate(
                h, size=self.image_size, mode="bilinear", align_corners=True)
            recon = F.binary_cross_entropy_with_logits(self.decoder(up), target)
            loss = loss + self.lambda_recon * recon
        if self.lambda_task:
            out = self.head(h)
            task = (supervised_contrastive_loss(out, y) if self.task_loss == "contrast"
                    else F.cross_entropy(out, y))
            loss = loss + self.lambda_task * task
        return loss


class AugLocalAux(nn.Module):
    """AugLocal's auxiliary network: fresh copies of sampled later layers + head.

    For each sampled layer a new, randomly initialised basic block with that
    layer's output width is stacked (stride 2 where the sampled layer's
    resolution is lower, one halving per block); then global average pooling,
    batch norm (only when the depth is 1) and a linear classifier, trained
    with cross-entropy.

    Parameters
    ----------
    in_shape : tuple of int
        ``(C, H, W)`` of the module output.
    layer_shapes : list of tuple of int
        ``(C, H, W)`` of the output of each sampled layer, in order.
    n_classes : int
        Number of classes.
    """

    def __init__(self, in_shape, layer_shapes, n_classes):
        super().__init__()
        blocks, channels, size, pending = [], in_shape[0], in_shape[1], 0
        for c, h, _ in layer_shapes:
            pending += max(0, round(math.log2(size / h))) if h else 0
            stride = 2 if pending > 0 else 1
            pending -= stride == 2
            blocks.append(BasicBlock(channels, c, stride))
            channels, size = c, h
        self.blocks = nn.Sequential(*blocks)
        norm = [nn.BatchNorm1d(channels)] if len(blocks) <= 1 else []
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), *norm, nn.Linear(channels, n_classes)
        )
        init_weights(self)

    def forward(self, h, target, y):
        """Cross-entropy of the auxiliary logits (``target`` is unused).

        Parameters
        ----------
        h : torch.Tensor of shape (n, C, H, W)
            Output of the local module.
        target : torch.Tensor of shape (n, C_in, H_in, W_in) or None
            Input images scaled to [0, 1] (used by reconstruction losses).
        y : torch.Tensor of shape (n,)
            Class indices.

        Returns
        -------
        loss : torch.Tensor
            Scalar local loss.
        """
        return F.cross_entropy(self.head(self.blocks(h)), y)


class MANAux(nn.Module):
    """Momentum auxiliary network: EMA of the next block + learnable bias path.

    The input of the base auxiliary network is ``z = lb(h) + ema(h)``, where
    ``ema`` is a frozen copy of the first block of the next module, kept as an
    exponential moving average of that block's parameters
    (:meth:`update_ema`), and ``lb`` is a trainable block of the same
    architecture. Gradients flow through ``ema`` (its weights are frozen) into
    the local module.

    ``ema`` starts as an exact copy of the next block (so from the first step
    it represents it); ``lb`` starts from a fresh random initialisation, as
    the reference code effectively does.

    With ``recompute=True`` the activations of ``lb`` and ``ema`` are not
    kept for the backward pass but recomputed there, one block at a time,
    once the base auxiliary network's graph is freed
    (:func:`torch.utils.checkpoint.checkpoint`): the gradients are the same,
    the peak memory of a module drops by about two blocks' activations, and
    each step runs the two blocks forward once more. (Their batch-norm running
    statistics are then updated twice per step; no one reads them: the
    auxiliary network trains on batch statistics and is not used for
    prediction.)

    Parameters
    ----------
    next_block : torch.nn.Module
        First block of the next local module (copied, not shared).
    base : torch.nn.Module
        Auxiliary network of the underlying method (DGL or InfoPro) built for
        the output shape of ``next_block``.
    recompute : bool, default=False
        Recompute the two blocks' activations in the backward pass.
    """

    def __init__(self, next_block, base, recompute=False):
        super().__init__()
        self.ema = copy.deepcopy(next_block)
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.lb = copy.deepcopy(next_block)
        init_weights(self.lb)
        self.base = base
        self.recompute = bool(recompute)

    def forward(self, h, target, y):
        """Base local loss of ``lb(h) + ema(h)``.

        Parameters
        ----------
        h : torch.Tensor of shape (n, C, H, W)
            Output of the local module.
        target : torch.Tensor of shape (n, C_in, H_in, W_in) or None
            Input images scaled to [0, 1] (used by reconstruction losses).
        y : torch.Tensor of shape (n,)
            Class indices.

        Returns
        -------
        loss : torch.Tensor
            Scalar local loss.
        """
        if self.recompute and torch.is_grad_enabled():
            z = (checkpoint(self.lb, h, use_reentrant=False, preserve_rng_state=False)
                 + checkpoint(self.ema, h, use_reentrant=False, preserve_rng_state=False))
        else:
            z = self.lb(h) + self.ema(h)
        return self.base(z, target, y)

    @torch.no_grad()
    def update_ema(self, source, momentum):
        """``theta_ema <- m * theta_ema + (1 - m) * theta_source`` for every parameter.

        Parameters
        ----------
        source : torch.nn.Module
            The block being tracked (same architecture as ``ema``).
        momentum : float
            The EMA coefficient m.
        """
        for pe, ps in zip(self.ema.parameters(), source.parameters(), strict=True):
            pe.mul_(momentum).add_(ps.detach(), alpha=1.0 - momentum)
