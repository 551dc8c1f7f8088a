"""LocalLearningClassifier: BP, DGL, InfoPro, MAN and AugLocal behind fit / predict."""

from sklearn.utils import check_scalar

from .._utils import check_option
from ..backbones.resnet import make_resnet, parse_resnet_name
from ..base import BaseTorchClassifier
from ._net import METHODS, LocalNet
from ._schedule import split_layers

__all__ = ["LocalLearningClassifier"]


class LocalLearningClassifier(BaseTorchClassifier):
    """Image classifier trained end to end (BP) or by supervised local learning.

    The backbone (a CIFAR-style ResNet) is cut into ``n_local_modules``
    gradient-isolated modules. Each module but the last is trained only by
    the loss of its own small auxiliary network; the last is trained by the
    ordinary cross-entropy of the backbone's pooled linear head. Because every
    module calls ``backward()`` on its own loss before the next module runs,
    only one module's activations are alive at a time, which is where the
    memory saving comes from. Prediction uses the backbone and its head only.

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
    n_local_modules : int, default=4
        Number of modules K (at most the number of layers: stem + blocks).
    backbone : str, default="resnet32"
        ``"resnet{6n+2}"``: ``"resnet8"``, ``"resnet20"``, ``"resnet32"``,
        ``"resnet56"``, ``"resnet110"``, ...
    width : int, default=16
        Channels of the first stage (16 in the papers); stages have
        ``width``, ``2*width`` and ``4*width`` channels.
    split : {"auto", "even", "layerwise", "memory"} or tuple of int, default="auto"
        How layers are grouped into modules, see :func:`split_layers`.
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
    infopro_lambdas : tuple of 4 float, default=(5.0, 0.5, 0.0, 1.0)
        InfoPro (and MAN on InfoPro): ``(recon_first, task_first, recon_last,
        task_last)`` weights, interpolated linearly from the first to the last
        local module.
    aux_hidden : int, default=128
        InfoPro: hidden width of the auxiliary classifier.
    infopro_task_loss : {"ce", "contrast"}, default="ce"
        InfoPro: task term of the local loss, cross-entropy ("softmax" in the
        paper) or the supervised contrastive loss (the paper's default, which
        needs large batches to have many positives per class).
    max_iter : int, default=50
        Maximum number of epochs.
    batch_size : int, default=128
        Minibatch size.
    solver : {"adam", "sgd"}, default="adam"
        Optimizer (one for all modules and auxiliary networks).
    learning_rate_init : float, default=1e-3
        Initial learning rate.
    learning_rate : {"constant", "cosine"}, default="cosine"
        Learning-rate schedule over ``max_iter`` epochs.
    momentum : float, default=0.9
        SGD momentum.
    nesterovs_momentum : bool, default=True
        Nesterov momentum for SGD.
    weight_decay : float, default=1e-4
        L2 penalty.
    early_stopping : bool, default=False
        Stop on a held-out validation score and keep the best weights.
    validation_fraction : float, default=0.1
        Held-out share for early stopping.
    n_iter_no_change : int, default=10
        Epochs without improvement before stopping.
    tol : float, default=1e-4
        Minimum improvement that counts.
    random_state : int, RandomState instance or None, default=None
        Seed of initialisation and shuffling; an int gives identical
        predictions across CPU runs.
    verbose : int, default=0
        Show a progress bar when positive.
    warm_start : bool, default=False
        Continue from the previous fit's weights.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Training device.
    input_shape : tuple of int or None, default=None
        ``(C, H, W)`` or ``(H, W)`` used to unflatten 2-D ``X``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    module_ : LocalNet
        The trained network (backbone + auxiliary networks).
    module_bounds_ : list of tuple of int
        ``(start, stop)`` layer range of each module.
    input_shape_ : tuple of int
        ``(C, H, W)`` of one training image.
    n_features_in_ : int
        ``X.shape[1]`` at fit time (channels for image input).
    history_ : list of dict
        Per epoch: ``epoch``, ``lr``, ``loss`` (output cross-entropy),
        ``loss_module_k`` (each module's local loss), ``time`` (seconds), and
        ``validation_score`` with early stopping.
    loss_curve_ : list of float
        ``loss`` per epoch.
    n_iter_ : int
        Epochs run.
    peak_activation_bytes_ : int
        Peak bytes of tensors saved for backward during the first training
        step of the last ``fit`` (storages deduplicated, parameters excluded).
    peak_cuda_memory_bytes_ : int or None
        On CUDA, ``torch.cuda.max_memory_allocated`` during the second
        training step (after a warm-up step); None on CPU.
    device_ : torch.device
        Device used.

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

    def __init__(
        self,
        method="dgl",
        n_local_modules=4,
        backbone="resnet32",
        *,
        width=16,
        split="auto",
        aux_depth=2,
        pyramid_coeff=0.5,
        man_base="infopro",
        man_momentum=0.995,
        infopro_lambdas=(5.0, 0.5, 0.0, 1.0),
        aux_hidden=128,
        infopro_task_loss="ce",
        max_iter=50,
        batch_size=128,
        solver="adam",
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
        input_shape=None,
    ):
        super().__init__(
            max_iter=max_iter,
            batch_size=batch_size,
            solver=solver,
            learning_rate_init=learning_rate_init,
            learning_rate=learning_rate,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            weight_decay=weight_decay,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
            device=device,
            input_shape=input_shape,
        )
        self.method = method
        self.n_local_modules = n_local_modules
        self.backbone = backbone
        self.width = width
        self.split = split
        self.aux_depth = aux_depth
        self.pyramid_coeff = pyramid_coeff
        self.man_base = man_base
        self.man_momentum = man_momentum
        self.infopro_lambdas = infopro_lambdas
        self.aux_hidden = aux_hidden
        self.infopro_task_loss = infopro_task_loss

    def _check_params(self):
        super()._check_params()
        check_option("method", self.method, METHODS)
        n_blocks = parse_resnet_name(self.backbone)
        check_scalar(self.n_local_modules, "n_local_modules", int, min_val=1)
        n_layers = 3 * n_blocks + 1
        if self.n_local_modules > n_layers:
            raise ValueError(
                f"n_local_modules={self.n_local_modules} is larger than the number of layers "
                f"of backbone={self.backbone!r} ({n_layers}: the stem and {3 * n_blocks} "
                "residual blocks); use fewer modules or a deeper backbone."
            )
        check_scalar(self.width, "width", int, min_val=1)
        if not isinstance(self.split, str):
            try:
                ok = all(int(i) == i for i in self.split)
            except TypeError:
                ok = False
            if not ok:
                raise ValueError(
                    "split must be 'auto', 'even', 'layerwise', 'memory' or a tuple of "
                    f"layer indices; got {self.split!r}."
                )
        elif self.split != "auto":
            check_option("split", self.split, ("auto", "even", "layerwise", "memory"))
        check_scalar(self.aux_depth, "aux_depth", int, min_val=1)
        check_scalar(self.pyramid_coeff, "pyramid_coeff", float, min_val=0, max_val=1)
        check_option("man_base", self.man_base, ("infopro", "dgl"))
        check_scalar(self.man_momentum, "man_momentum", float, min_val=0, max_val=1)
        lambdas = self.infopro_lambdas
        if (
            not isinstance(lambdas, (tuple, list))
            or len(lambdas) != 4
            or not all(isinstance(v, (int, float)) and v >= 0 for v in lambdas)
        ):
            raise ValueError(
                "infopro_lambdas must be 4 non-negative numbers (recon_first, task_first, "
                f"recon_last, task_last); got {lambdas!r}."
            )
        check_scalar(self.aux_hidden, "aux_hidden", int, min_val=1)
        check_option("infopro_task_loss", self.infopro_task_loss, ("ce", "contrast"))

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
        return split_layers(n_layers, self.n_local_modules, strategy, costs)

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
            infopro_lambdas=tuple(self.infopro_lambdas),
            aux_depth=self.aux_depth,
            pyramid_coeff=self.pyramid_coeff,
            aux_hidden=self.aux_hidden,
            infopro_task_loss=self.infopro_task_loss,
        )

    def _on_train_data(self, X, y):
        self.module_.set_image_range(X)

    def _train_step(self, X, y):
        self.optimizer_.zero_grad(set_to_none=True)
        losses = self.module_.train_step(X, y)
        self.optimizer_.step()
        stats = {"loss": losses[-1]}
        if len(losses) > 1:
            stats.update({f"loss_module_{k}": v for k, v in enumerate(losses)})
        return stats
