"""The trainable network of local learning: backbone cut into modules + aux nets."""

import torch
from torch import nn
from torch.nn import functional as F

from ._aux import AugLocalAux, DGLAux, InfoProAux, MANAux
from ._schedule import (
    auglocal_depths,
    infopro_loss_weights,
    man_loss_weights,
    uniform_sample_layers,
)

__all__ = ["LocalNet", "METHODS"]

METHODS = ("bp", "dgl", "infopro", "man", "auglocal")


def _cpu_layout(x):
    """Images in the memory layout the CPU's convolutions use without copies.

    On the CPU, oneDNN convolutions reorder NCHW tensors to a blocked layout
    and back: a full-size temporary in every convolution's forward and two in
    its backward, which at the memory peak of a local module is about a fifth
    of it. Channels-last tensors are used as they are, and every later layer
    keeps that layout. (CUDA keeps NCHW, cuDNN's fast path for float32.)
    """
    if x.device.type == "cpu" and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


class LocalNet(nn.Module):
    """A backbone cut into gradient-isolated modules, each with a local loss.

    ``forward`` is plain inference through the backbone (auxiliary networks
    are not used). :meth:`local_losses` runs the modules in order; module
    ``k`` computes its loss (its auxiliary network's loss, or the
    cross-entropy of the backbone's head for the last module) and hands a
    *detached* output to module ``k+1``: no gradient crosses a module border.
    The training loop (not the module) calls ``backward()`` on each loss
    before asking for the next, which frees that module's autograd graph,
    and then :meth:`after_backward` (MAN's EMA update).

    Parameters
    ----------
    backbone : CifarResNet
        Network exposing ``layers`` (a ModuleList) and ``head``.
    bounds : list of tuple of int
        ``(start, stop)`` layer range of every module.
    method : {"bp", "dgl", "infopro", "man", "auglocal"}
        Local learning rule (``"bp"`` needs a single module).
    n_classes : int
        Number of classes.
    input_shape : tuple of int
        ``(C, H, W)`` of one input image.
    man_base : {"dgl", "infopro"}, default="infopro"
        Auxiliary network under MAN.
    man_momentum : float, default=0.995
        EMA coefficient of MAN.
    man_recipe : {"reference", "infopro"}, default="reference"
        MAN on InfoPro: ``"reference"`` follows MAN's reference code (``"2c2f"``
        head; weights ``(5, 0.5, 0, 0)`` interpolated by the next block's
        stage, see :func:`~neural.local.man_loss_weights`); ``"infopro"`` uses InfoPro's
        auxiliary network exactly as ``method="infopro"`` does (``"1c2f"``
        head, weights interpolated by module index).
    man_recompute : bool, default=True
        Recompute MAN's two extra blocks in the backward pass instead of
        keeping their activations (same gradients, less memory, see
        :class:`MANAux`).
    infopro_lambdas : tuple of 4 float or None, default=None
        InfoPro loss weights ``(recon_first, task_first, recon_last,
        task_last)``; None: ``(5, 0.5, 0, 1)`` by module index (see
        :func:`~neural.local.infopro_loss_weights`), or ``(5, 0.5, 0, 0)`` by stage for MAN's
        reference recipe.
    aux_depth : int, default=2
        Depth D of the first AugLocal auxiliary network.
    pyramid_coeff : float, default=0.5
        AugLocal depth decay, see :func:`~neural.local.auglocal_depths`.
    aux_hidden : int, default=128
        Hidden width of InfoPro's auxiliary classifier.
    infopro_task_loss : {"ce", "contrast"}, default="ce"
        Task term of InfoPro's local loss, see :class:`InfoProAux`.
    """

    def __init__(
        self,
        backbone,
        bounds,
        method,
        n_classes,
        input_shape,
        *,
        man_base="infopro",
        man_momentum=0.995,
        man_recipe="reference",
        man_recompute=True,
        infopro_lambdas=None,
        aux_depth=2,
        pyramid_coeff=0.5,
        aux_hidden=128,
        infopro_task_loss="ce",
    ):
        super().__init__()
        if method == "bp" and len(bounds) != 1:
            raise ValueError("method='bp' trains the whole network as one module.")
        self.backbone = backbone
        self.bounds = [tuple(b) for b in bounds]
        self.method = method
        self.man_momentum = float(man_momentum)
        self.input_shape = tuple(input_shape)
        shapes = self._layer_shapes(backbone, input_shape)
        self.layer_shapes = shapes
        n_layers, n_modules = len(shapes), len(bounds)
        widest = max(s[0] for s in shapes)
        reference = method == "man" and man_recipe == "reference"
        if reference:
            # stage (1-based) of each block: the stages are the distinct widths, in order
            widths = sorted({c for c, _, _ in shapes[1:]})
            next_stages = [widths.index(shapes[stop][0]) + 1 for _, stop in self.bounds[:-1]]
            lambdas = (5.0, 0.5, 0.0, 0.0) if infopro_lambdas is None else infopro_lambdas
            weights = man_loss_weights(next_stages, n_modules, lambdas, len(widths))
        else:
            lambdas = (5.0, 0.5, 0.0, 1.0) if infopro_lambdas is None else infopro_lambdas
            weights = infopro_loss_weights(n_modules, lambdas)
        depths = auglocal_depths(n_modules, aux_depth, pyramid_coeff)

        def infopro(k, shape):
            return InfoProAux(shape, input_shape, n_classes, weights[k], shape[0] == widest,
                              aux_hidden, infopro_task_loss, "2c2f" if reference else "1c2f")

        aux = []
        for k, (_, stop) in enumerate(self.bounds[:-1]):
            shape = shapes[stop - 1]
            if method == "dgl":
                aux.append(DGLAux(shape, n_classes))
            elif method == "infopro":
                aux.append(infopro(k, shape))
            elif method == "auglocal":
                picks = uniform_sample_layers(stop - 1, n_layers, depths[k])
                aux.append(AugLocalAux(shape, [shapes[i] for i in picks], n_classes))
            elif method == "man":
                next_shape = shapes[stop]
                base = DGLAux(next_shape, n_classes) if man_base == "dgl" else infopro(k, next_shape)
                aux.append(MANAux(backbone.layers[stop], base, recompute=man_recompute))
        self.aux = nn.ModuleList(aux)
        # per-channel range of the training images: reconstruction targets in [0, 1]
        self.register_buffer("image_min", torch.zeros(input_shape[0]))
        self.register_buffer("image_max", torch.ones(input_shape[0]))

    @staticmethod
    @torch.no_grad()
    def _layer_shapes(backbone, input_shape):
        was_training = backbone.training
        backbone.eval()
        h = torch.zeros(1, *input_shape, device=next(backbone.parameters()).device)
        shapes = []
        for layer in backbone.layers:
            h = layer(h)
            shapes.append(tuple(h.shape[1:]))
        backbone.train(was_training)
        return shapes

    def set_image_range(self, low, high):
        """Record the per-channel range of the training images (reconstruction targets).

        Parameters
        ----------
        low, high : array-like of shape (C,)
            Smallest and largest value of every channel over the training images.
        """
        lo = torch.as_tensor(low, dtype=torch.float32)
        hi = torch.as_tensor(high, dtype=torch.float32)
        hi = torch.where(hi > lo, hi, lo + 1.0)
        self.image_min.copy_(lo)
        self.image_max.copy_(hi)

    @property
    def reconstructs(self):
        """Whether the auxiliary losses reconstruct the input (InfoPro and MAN): only then is
        the image range of :meth:`set_image_range` used."""
        return self.method in ("infopro", "man")

    def _recon_target(self, x):
        lo = self.image_min.view(1, -1, 1, 1)
        hi = self.image_max.view(1, -1, 1, 1)
        return ((x - lo) / (hi - lo)).clamp(0.0, 1.0)

    def forward(self, x):
        """Inference through the backbone and its head only (no auxiliary network).

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, H, W)
            Images.

        Returns
        -------
        logits : torch.Tensor of shape (n, n_classes)
            Class scores.
        """
        return self.backbone(_cpu_layout(x))

    def run_module(self, k, h):
        """Apply the layers of module ``k``.

        Parameters
        ----------
        k : int
            Module index.
        h : torch.Tensor
            Input of the module (the output of module ``k-1``, or the images).

        Returns
        -------
        out : torch.Tensor
            Output of the module.
        """
        start, stop = self.bounds[k]
        for layer in self.backbone.layers[start:stop]:
            h = layer(h)
        return h

    def module_parameters(self, k):
        """List the backbone parameters of module ``k`` (plus the head if last).

        Parameters
        ----------
        k : int
            Module index.

        Returns
        -------
        params : list of torch.nn.Parameter
            Parameters trained by module ``k``'s loss (auxiliary networks excluded).
        """
        start, stop = self.bounds[k]
        params = [p for layer in self.backbone.layers[start:stop] for p in layer.parameters()]
        if k == len(self.bounds) - 1:
            params += list(self.backbone.head.parameters())
        return params

    def local_losses(self, x, y):
        """Yield ``(k, loss_k)`` module by module, handing on detached outputs.

        The caller should ``backward()`` each loss before asking for the next
        one: that frees the module's graph, which is the memory saving.

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, H, W)
            Images.
        y : torch.Tensor of shape (n,)
            Class indices.

        Yields
        ------
        k : int
            Module index.
        loss : torch.Tensor
            Scalar loss of module ``k``.
        """
        target = self._recon_target(x) if self.reconstructs else None
        h = _cpu_layout(x)
        last = len(self.bounds) - 1
        for k in range(len(self.bounds)):
            h = self.run_module(k, h)
            if k < last:
                yield k, self.aux[k](h, target, y)
            else:
                yield k, F.cross_entropy(self.backbone.head(h), y)
            h = h.detach()

    def after_backward(self, k):
        """Work due after module ``k``'s backward, before the optimizer step.

        MAN moves the EMA copy of the block after module ``k`` towards that
        block's current weights (the reference order); other methods do
        nothing.

        Parameters
        ----------
        k : int
            Module index.
        """
        if self.method == "man" and k < len(self.aux):
            self.aux[k].update_ema(self.backbone.layers[self.bounds[k][1]], self.man_momentum)
