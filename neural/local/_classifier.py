"""LocalLearningClassifier: BP, DGL, InfoPro, MAN and AugLocal behind fit / predict."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from .._data import ArrayDataset, iter_items
from .._estimator import BaseTorchClassifier, ImageInputMixin, store_params
from .._validation import Finite, TupleOf
from ..backbones.resnet import make_resnet, parse_resnet_name
from ._net import METHODS, LocalNet
from ._schedule import split_layers

__all__ = ["LocalLearningClassifier"]


class LocalLearningClassifier(ImageInputMixin, BaseTorchClassifier):
    """Image classifier trained end to end (BP) or by supervised local learning.

    The backbone (a CIFAR-style ResNet) is cut into ``n_local_modules``
    gradient-isolated modules. Each module but the last is trained only by
    the loss of its own small auxiliary network; the last is trained by the
    ordinary cross-entropy of the backbone's pooled linear head. Because the
    training loop backpropagates every module's loss before the next module
    runs, only one module's activations are alive at a time, which is where
    the memory saving comes from. Prediction uses the backbone and its head only.
    The network is a :class:`~neural.local.LocalNet` (``module_``).

    Read more in the :doc:`user guide </neural/local_learning>`.

    Parameters
    ----------
    method : {"bp", "dgl", "infopro", "man", "auglocal"}, default="dgl"
        ``"bp"``: end-to-end backpropagation (``n_local_modules`` is ignored).
        ``"dgl"``: decoupled greedy learning, a small CNN/MLP classifier per
        module. ``"infopro"``: a reconstruction decoder + classifier per
        module, weights interpolated across modules (``infopro_lambdas``).
        ``"man"``: momentum auxiliary network on top of ``man_base``: the
        auxiliary network of module k sees ``lb(h) + ema(h)`` where ``ema``
        is an exponential moving average of the first block of module k+1.
        ``"auglocal"``: the auxiliary network of module k is built from fresh
        copies of later layers sampled uniformly, with a depth that decreases
        linearly with k.
    n_local_modules : int or "auto", default="auto"
        Number of modules K (at most the number of layers N: stem + blocks).
        ``"auto"``: the paper's layout for AugLocal, every layer its own module
        and the last ``aux_depth + 1`` layers trained together (K = N -
        ``aux_depth``, 14 for ResNet-32 with ``aux_depth=2``); 4 for the other
        methods. Before, AugLocal used K = 4 too: pass ``n_local_modules=4``
        for that.
    backbone : str, default="resnet32"
        ``"resnet{6n+2}"``: ``"resnet8"``, ``"resnet20"``, ``"resnet32"``,
        ``"resnet56"``, ``"resnet110"``, ...
    width : int, default=16
        Channels of the first stage (16 in the papers); stages have
        ``width``, ``2*width`` and ``4*width`` channels.
    split : {"auto", "even", "layerwise", "memory"} or tuple of int, default="auto"
        How layers are grouped into modules, see :func:`~neural.local.split_layers`.
        ``"auto"`` is ``"layerwise"`` for AugLocal (one layer per module, the
        rest in the last module, as in the paper) and ``"even"`` otherwise.
    aux_depth : int, default=2
        AugLocal: depth D of the first auxiliary network.
    pyramid_coeff : float, default=0.5
        AugLocal: depth decay coefficient c in [0, 1] (0: constant depth).
    man_base : {"infopro", "dgl"}, default="infopro"
        MAN: the local loss it is plugged into.
    man_momentum : float, default=0.995
        MAN: EMA coefficient m of ``theta_ema <- m theta_ema + (1-m) theta_next``.
    man_recipe : {"reference", "infopro"}, default="reference"
        MAN on InfoPro: ``"reference"`` is MAN's reference code, a ``"2c2f"``
        auxiliary head (two convolutions, two linear layers) and the weights
        ``infopro_lambdas`` (default ``(5, 0.5, 0, 0)``) interpolated by the
        stage of the next block (:func:`~neural.local.man_loss_weights`);
        ``"infopro"`` is InfoPro's auxiliary network exactly as
        ``method="infopro"`` builds it (``"1c2f"`` head, weights by module
        index), the behaviour before this option existed.
    man_recompute : bool, default=True
        MAN: recompute the activations of the two extra blocks (EMA and
        learnable bias) in the backward pass instead of keeping them: the
        same gradients, about two blocks' activations less memory per module,
        one more forward of those blocks per step.
    infopro_lambdas : tuple of 4 float or None, default=None
        InfoPro (and MAN on InfoPro): ``(recon_first, task_first, recon_last,
        task_last)`` weights, interpolated linearly from the first to the last
        local module (by the next block's stage for MAN's reference recipe).
        None: ``(5, 0.5, 0, 1)``, or ``(5, 0.5, 0, 0)`` for MAN's reference
        recipe.
    aux_hidden : int, default=128
        InfoPro: hidden width of the auxiliary classifier.
    infopro_task_loss : {"ce", "contrast"}, default="ce"
        InfoPro: task term of the local loss, cross-entropy ("softmax" in the
        paper) or the supervised contrastive loss (the paper's default, which
        needs large batches to have many positives per class).
    {training_params}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    module_bounds_ : list of tuple of int
        ``(start, stop)`` layer range of each module.
    {training_attributes}

    See Also
    --------
    neural.local.LocalNet : The underlying module, for custom training loops.

    References
    ----------
    .. [1] Belilovsky, Eickenberg, Oyallon. Decoupled Greedy Learning of CNNs.
       ICML 2020.
    .. [2] Wang, Ni, Song, Yang, Huang. Revisiting Locally Supervised Learning:
       an Alternative to End-to-end Training. ICLR 2021.
    .. [3] Ma, Wu, Si, Tan. Scaling Supervised Local Learning with Augmented
       Auxiliary Networks. ICLR 2024.
    .. [4] Su et al. Momentum Auxiliary Network for Supervised Local Learning.
       ECCV 2024.

    Examples
    --------
    >>> from neural.datasets import make_shapes
    >>> from neural.local import LocalLearningClassifier
    >>> X, y = make_shapes(200, image_size=8, random_state=0)
    >>> clf = LocalLearningClassifier(method="dgl", n_local_modules=2,
    ...                               backbone="resnet8", width=4, max_iter=2,
    ...                               random_state=0, device="cpu")
    >>> clf.fit(X, y).predict(X[:3]).shape
    (3,)
    """

    _history_doc = ("``loss_module_k``, the local loss of every module k (``loss`` is the output "
                    "cross-entropy)")

    _parameter_constraints = {
        **BaseTorchClassifier._parameter_constraints,
        **ImageInputMixin._image_constraints,
        "method": [StrOptions(set(METHODS))],
        "n_local_modules": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "backbone": [str],
        "width": [Interval(Integral, 1, None, closed="left")],
        "split": [StrOptions({"auto", "even", "layerwise", "memory"}), TupleOf(Integral)],
        "aux_depth": [Interval(Integral, 1, None, closed="left")],
        "pyramid_coeff": [Finite(Real, 0, 1, closed="both")],
        "man_base": [StrOptions({"infopro", "dgl"})],
        "man_momentum": [Finite(Real, 0, 1, closed="both")],
        "man_recipe": [StrOptions({"reference", "infopro"})],
        "man_recompute": ["boolean"],
        "infopro_lambdas": [None, TupleOf(Finite(Real, 0, None, closed="left"), lengths=(4,))],
        "aux_hidden": [Interval(Integral, 1, None, closed="left")],
        "infopro_task_loss": [StrOptions({"ce", "contrast"})],
    }

    def __init__(
        self,
        method="dgl",
        n_local_modules="auto",
        backbone="resnet32",
        *,
        width=16,
        split="auto",
        aux_depth=2,
        pyramid_coeff=0.5,
        man_base="infopro",
        man_momentum=0.995,
        man_recipe="reference",
        man_recompute=True,
        infopro_lambdas=None,
        aux_hidden=128,
        infopro_task_loss="ce",
        input_shape=None,
        max_iter=50,
        batch_size=128,
        solver="adam",
        optimizer_kwargs=None,
        learning_rate_init=1e-3,
        learning_rate="cosine",
        momentum=0.9,
        nesterovs_momentum=True,
        weight_decay=1e-4,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        random_state=None,
        verbose=0,
        warm_start=False,
        device="auto",
        num_workers=0,
        precision="32",
        distributed="auto",
        callbacks=None,
    ):
        store_params(self, locals())

    def _check_params(self):
        super()._check_params()
        n_blocks = parse_resnet_name(self.backbone)
        n_layers = 3 * n_blocks + 1
        if self.n_local_modules == "auto" and self.method == "auglocal":
            if n_layers - self.aux_depth < 2:
                raise ValueError(
                    f"aux_depth={self.aux_depth} leaves no layer to train locally in "
                    f"backbone={self.backbone!r} ({n_layers} layers: AugLocal's layout has "
                    f"{n_layers} - aux_depth modules); use a smaller aux_depth, a deeper "
                    "backbone or an explicit n_local_modules."
                )
        elif self._n_modules(n_layers) > n_layers:
            raise ValueError(
                f"n_local_modules={self.n_local_modules} is larger than the number of layers "
                f"of backbone={self.backbone!r} ({n_layers}: the stem and {3 * n_blocks} "
                "residual blocks); use fewer modules or a deeper backbone."
            )

    def _n_modules(self, n_layers):
        """K: ``n_local_modules``, or the automatic choice (see the class docstring)."""
        if self.n_local_modules != "auto":
            return self.n_local_modules
        return n_layers - self.aux_depth if self.method == "auglocal" else 4

    def _module_bounds(self, backbone, n_layers):
        if self.method == "bp":
            return [(0, n_layers)]
        strategy = self.split
        if strategy == "auto":
            strategy = "layerwise" if self.method == "auglocal" else "even"
        costs = None
        if strategy == "memory":
            shapes = LocalNet._layer_shapes(backbone, self.input_shape_)
            costs = [c * h * w for c, h, w in shapes]
        return split_layers(n_layers, self._n_modules(n_layers), strategy, costs)

    def _build_module(self):
        backbone = make_resnet(
            self.backbone,
            width=self.width,
            in_channels=self.input_shape_[0],
            n_classes=len(self.classes_),
        )
        n_layers = len(backbone.layers)
        bounds = self._module_bounds(backbone, n_layers)
        self.module_bounds_ = bounds
        return LocalNet(
            backbone,
            bounds,
            self.method,
            len(self.classes_),
            self.input_shape_,
            man_base=self.man_base,
            man_momentum=self.man_momentum,
            man_recipe=self.man_recipe,
            man_recompute=self.man_recompute,
            infopro_lambdas=None if self.infopro_lambdas is None else tuple(self.infopro_lambdas),
            aux_depth=self.aux_depth,
            pyramid_coeff=self.pyramid_coeff,
            aux_hidden=self.aux_hidden,
            infopro_task_loss=self.infopro_task_loss,
        )

    def _init_module(self, dataset):
        # reconstruction targets are the images scaled by the training range of each channel;
        # the other methods never read it (no pass over a lazy dataset for them)
        if not self.module_.reconstructs:
            return
        if isinstance(dataset, ArrayDataset):
            X = dataset.x
            self.module_.set_image_range(X.min(axis=(0, 2, 3)), X.max(axis=(0, 2, 3)))
            return
        low = high = None
        for x, _ in iter_items(dataset, self.num_workers):
            lo, hi = x.min(axis=(1, 2)), x.max(axis=(1, 2))
            low = lo if low is None else np.minimum(low, lo)
            high = hi if high is None else np.maximum(high, hi)
        self.module_.set_image_range(low, high)

    def _train_losses(self, X, y, phase):
        net = self.module_
        last = len(net.bounds) - 1
        for k, loss in net.local_losses(X, y):
            stats = {f"loss_module_{k}": loss.detach()} if last > 0 else {}
            if k == last:
                stats["loss"] = loss.detach()
            yield loss, stats
            # resumed after module k's backward: its graph is freed, the step not taken yet
            net.after_backward(k)

    def _distributed_units(self):
        # one DDP wrapper per gradient-isolated module (its layers and auxiliary network, or
        # head): each local loss's backward all-reduces that module's gradients, no others
        net = self.module_
        last = len(net.bounds) - 1
        return [[*net.backbone.layers[start:stop], net.aux[k] if k < last else net.backbone.head]
                for k, (start, stop) in enumerate(net.bounds)]
