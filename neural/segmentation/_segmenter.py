"""DToPSegmenter: the DToP ViT behind scikit-learn's fit / predict, with a compute report."""

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d
from torch.nn import functional as F

from .._estimator import BaseTorchClassifier, ImageInputMixin, store_params
from .._trainer import Phase
from .._validation import Finite, TupleOf
from ._vit import DToPViT

__all__ = ["DToPSegmenter", "PruningReport", "mean_iou"]


def mean_iou(y_true, y_pred, *, labels=None, sample_weight=None):
    """Mean intersection over union of label masks, accumulated over the data set.

    For each class, IoU = TP / (TP + FP + FN) with the counts summed over all
    pixels of all images (as mmsegmentation does); classes absent from both
    ``y_true`` and ``y_pred`` are left out of the mean.

    Parameters
    ----------
    y_true : array-like of shape (n_samples, H, W) or (n_samples,)
        True labels.
    y_pred : array-like of the same shape
        Predicted labels.
    labels : array-like or None, default=None
        Classes to average over (default: those in ``y_true`` or ``y_pred``).
    sample_weight : array-like of shape (n_samples,) or None, default=None
        Weight of each image's pixels.

    Returns
    -------
    miou : float
        Mean IoU in [0, 1].
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}.")
    if labels is None:
        labels = np.union1d(np.unique(y_true), np.unique(y_pred))
    labels = np.asarray(labels)
    w = None
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
        w = np.broadcast_to(sample_weight.reshape(-1, *([1] * (y_true.ndim - 1))), y_true.shape).ravel()
    t = np.searchsorted(labels, y_true.ravel())
    p = np.searchsorted(labels, y_pred.ravel())
    L = len(labels)
    ok = (t < L) & (p < L)
    ok &= labels[np.minimum(t, L - 1)] == y_true.ravel()
    ok &= labels[np.minimum(p, L - 1)] == y_pred.ravel()
    conf = np.bincount(t[ok] * L + p[ok], weights=None if w is None else w[ok],
                       minlength=L * L).reshape(L, L)
    tp = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - tp
    present = union > 0
    if not present.any():
        return 0.0
    return float(np.mean(tp[present] / union[present]))


@dataclass
class PruningReport:
    """Compute of one prediction: tokens active per stage and FLOPs vs the unpruned model.

    Attributes
    ----------
    tokens_active : ndarray of shape (n_samples, n_stages)
        Tokens processed by each stage's blocks and head, per image.
    exit_stage : ndarray of shape (n_samples, h, w)
        Stage (0-based) where each token's prediction was finalised
        (``n_stages - 1``: it went through the whole backbone).
    flops : ndarray of shape (n_samples,)
        FLOPs per image of the pruned forward, auxiliary heads included.
    flops_unpruned : int
        FLOPs per image of the ordinary model (all tokens, final head only).
    n_tokens : int
        Tokens per image.
    """

    tokens_active: np.ndarray
    exit_stage: np.ndarray
    flops: np.ndarray
    flops_unpruned: int
    n_tokens: int

    @property
    def flops_ratio(self):
        """Mean FLOPs per image divided by the unpruned model's (float)."""
        return float(self.flops.mean() / self.flops_unpruned)

    @property
    def pruned_fraction(self):
        """Share of tokens that exited before the last stage (float)."""
        return float((self.exit_stage < self.tokens_active.shape[1] - 1).mean())

    def summary(self):
        """A short table: mean tokens per stage and the FLOP ratio.

        Returns
        -------
        text : str
            Human-readable summary.
        """
        per_stage = ", ".join(f"{v:.1f}" for v in self.tokens_active.mean(0))
        return (f"tokens active per stage (of {self.n_tokens}): {per_stage}; "
                f"pruned {100 * self.pruned_fraction:.1f}%; GFLOPs/image "
                f"{self.flops.mean() / 1e9:.4f} vs {self.flops_unpruned / 1e9:.4f} unpruned "
                f"({100 * self.flops_ratio:.1f}% of unpruned)")


class DToPSegmenter(ImageInputMixin, BaseTorchClassifier):
    """Plain-ViT semantic segmenter with dynamic token pruning (DToP).

    A small ViT (patch embedding, pre-norm transformer blocks) with a
    per-token classification head after every stage. During prediction, at
    the end of each stage but the last, a token whose top class probability
    exceeds ``p0`` is finalised with that stage's prediction and leaves the
    sequence, except the ``k`` most confident such tokens of each class,
    which stay so later blocks still see context for every class. Later
    blocks run attention and MLP only on the remaining tokens of each image,
    and the final map takes each token's prediction from the stage where it
    exited. Token logits are upsampled bilinearly to pixels. ``fit`` follows
    the paper's two-step recipe: plain training, then fine-tuning with
    pruning active (``finetune_iter``; 0 prunes at prediction only).

    Read more in the :doc:`user guide </neural/dtop>`.

    Parameters
    ----------
    p0 : float, default=0.99
        Confidence threshold in (0, 1]; ``1.0`` disables pruning (the
        auxiliary heads are then not even run at prediction). With the
        default fine-tuning, 0.99 changed the mIoU by -0.52 to +0.05 points
        for 37-46% fewer FLOPs against unpruned models of the same training
        budget in ``benchmarks/bench_dtop.py`` (two data sets, two seeds; the
        paper's ViT-B setting, 0.9, lost 0.3-0.6 points in its ``--sweep``).
    k : int, default=5
        Easy tokens kept per class and image for context (5 in the paper).
    patch_size : int, default=4
        Side of the square patches; must divide the image height and width.
    embed_dim : int, default=64
        Token width.
    depth : int, default=6
        Transformer blocks.
    num_heads : int, default=4
        Attention heads (must divide ``embed_dim``).
    mlp_ratio : float, default=4.0
        MLP hidden width over ``embed_dim``.
    stage_ends : tuple of int, default=(2, 4)
        Blocks (1-based) after which an auxiliary head ends a stage, strictly
        increasing and below ``depth``; ``()`` gives a plain segmenter.
    aux_weight : float, default=0.4
        Weight of every auxiliary head's cross-entropy in the training loss
        (the final map's cross-entropy has weight 1).
    finetune_iter : int, default=10
        The paper's two-step recipe as two training phases: ``fit`` first
        trains ``max_iter`` epochs without pruning (all heads on all tokens),
        then ``finetune_iter`` epochs with pruning at ``p0`` active in the
        training forward, so the heads learn on the pruned computation.
        ``finetune_iter=0`` trains without pruning only, and pruning happens
        at prediction only (any ``p0`` can then be set after training). With
        ``p0=1.0`` the second phase is plain extra training, the control for
        the same budget.
    finetune_learning_rate : float or None, default=None
        Initial learning rate of the fine-tuning phase (same schedule as
        ``learning_rate``, restarted); None uses ``0.3 * learning_rate_init``.
        Restarting at the full rate after a converged first phase can wreck
        the model.
    {training_params}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Labels found in the training masks.
    masks_ndim_ : int
        3 for masks (n, H, W); 1 for the degenerate 1-D targets (see Notes).
    {training_attributes}

    See Also
    --------
    neural.segmentation.DToPViT : The underlying module.
    neural.segmentation.make_segmentation : Synthetic data for this model.

    Notes
    -----
    Masks are integer label images of shape (n_samples, H, W). Flat input
    ``X`` of shape (n_samples, n_features) with 1-D ``y`` is read as 1x1
    images with one-pixel masks (with ``patch_size=1``), and predictions then
    have shape (n_samples,): this degenerate case is what scikit-learn's
    generic estimator checks exercise.

    References
    ----------
    .. [1] Tang, Liu, Hu, Wang, Shen, Li. Dynamic Token Pruning in Plain
       Vision Transformers for Semantic Segmentation. ICCV 2023.

    Examples
    --------
    >>> from neural.segmentation import DToPSegmenter, make_segmentation
    >>> X, masks = make_segmentation(40, image_size=16, random_state=0)
    >>> seg = DToPSegmenter(embed_dim=32, depth=4, num_heads=2, stage_ends=(2,),
    ...                     max_iter=2, finetune_iter=1, random_state=0,
    ...                     device="cpu").fit(X, masks)
    >>> seg.predict(X[:2]).shape
    (2, 16, 16)
    >>> pred, report = seg.predict(X[:2], return_report=True)
    >>> report.tokens_active.shape
    (2, 2)
    """

    _history_doc = ("``loss_final`` (the final map's cross-entropy), ``pruned`` (1.0 in the "
                    "fine-tuning phase) and ``active_fraction`` (tokens still active in the last "
                    "stage)")

    # fine-tuning starts at this fraction of learning_rate_init unless finetune_learning_rate is
    # set (chosen by benchmarks/bench_dtop.py --sweep: 0.3 beat 0.1; 1.0 wrecked models)
    _finetune_lr_fraction = 0.3

    _parameter_constraints = {
        **BaseTorchClassifier._parameter_constraints,
        **ImageInputMixin._image_constraints,
        "p0": [Finite(Real, 0, 1, closed="right")],
        "k": [Interval(Integral, 0, None, closed="left")],
        "patch_size": [Interval(Integral, 1, None, closed="left")],
        "embed_dim": [Interval(Integral, 1, None, closed="left")],
        "depth": [Interval(Integral, 1, None, closed="left")],
        "num_heads": [Interval(Integral, 1, None, closed="left")],
        "mlp_ratio": [Finite(Real, 0, None, closed="neither")],
        "stage_ends": [TupleOf(Integral)],
        "aux_weight": [Finite(Real, 0, None, closed="left")],
        "finetune_iter": [Interval(Integral, 0, None, closed="left")],
        "finetune_learning_rate": [Finite(Real, 0, None, closed="neither"), None],
    }

    def __init__(
        self,
        p0=0.99,
        k=5,
        *,
        patch_size=4,
        embed_dim=64,
        depth=6,
        num_heads=4,
        mlp_ratio=4.0,
        stage_ends=(2, 4),
        aux_weight=0.4,
        finetune_iter=10,
        finetune_learning_rate=None,
        input_shape=None,
        max_iter=50,
        batch_size=32,
        solver="adam",
        optimizer_kwargs=None,
        learning_rate_init=1e-3,
        learning_rate="cosine",
        momentum=0.9,
        nesterovs_momentum=True,
        weight_decay=0.0,
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

    # -------------------------------------------------------------- checks
    def _check_params(self):
        super()._check_params()
        if self.embed_dim % self.num_heads:
            raise ValueError(f"num_heads={self.num_heads} must divide embed_dim={self.embed_dim}.")
        ends = self.stage_ends
        if list(ends) != sorted(set(ends)) or (ends and (ends[0] < 1 or ends[-1] >= self.depth)):
            raise ValueError(
                f"stage_ends must be strictly increasing block numbers in [1, depth-1] = "
                f"[1, {self.depth - 1}] (the final head always follows block depth); got {ends!r}."
            )

    def _to_samples(self, X, *, reset):
        X = super()._to_samples(X, reset=reset)
        H, W = X.shape[2:]
        if H % self.patch_size or W % self.patch_size:
            raise ValueError(
                f"images of size {H}x{W} cannot be cut into patches of patch_size="
                f"{self.patch_size}; pick a patch_size dividing both sides or resize the images."
            )
        return X

    @staticmethod
    def _mask_shape(y, size):
        """Masks (n, H, W) matching images of ``size``; 1-D targets become 1x1 masks."""
        if y.ndim == 1:
            y = y.reshape(-1, 1, 1)
        if y.shape[1:] != tuple(size):
            raise ValueError(
                f"masks y must have shape (n_samples, H, W) = (n, {size[0]}, {size[1]}) to match "
                f"the images X; got y of shape {y.shape}."
            )
        return y

    def _validate(self, X, y=None, *, reset, requires_y=False):
        X, y = super()._validate(X, y, reset=reset, requires_y=requires_y)
        if y is not None:
            if reset:
                self.masks_ndim_ = int(y.ndim)
            y = self._mask_shape(y, X.shape[2:])
        return X, y

    def _validate_y(self, y):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:  # a column vector: 1-D targets, as sklearn reads it
            y = column_or_1d(y, warn=True)
        if y.ndim not in (1, 3):
            raise ValueError(
                "y must be label masks of shape (n_samples, H, W) (or (n_samples,) for 1x1 "
                f"images); got an array of shape {y.shape}."
            )
        return y

    def _items_dataset(self, dataset, *, reset, classes):
        data = super()._items_dataset(dataset, reset=reset, classes=classes)
        if reset:
            self.masks_ndim_ = 1 if data.targets is not None else 3
        return data

    def _convert_item(self, item, index):
        x, y = super()._convert_item(item, index)
        return x, self._mask_shape(y[None], x.shape[1:])[0]

    def _check_targets(self, y, reset, classes=None):
        flat = y.ravel()
        check_classification_targets(flat)
        return super()._check_targets(flat, reset, classes).reshape(y.shape)

    # ---------------------------------------------------------------- model
    def _build_module(self):
        C, H, W = self.input_shape_
        return DToPViT(C, (H, W), len(self.classes_), patch_size=self.patch_size,
                       embed_dim=self.embed_dim, depth=self.depth, num_heads=self.num_heads,
                       mlp_ratio=self.mlp_ratio, stage_ends=tuple(self.stage_ends))

    def _training_phases(self):
        """Plain training, then (``finetune_iter`` > 0) fine-tuning with pruning at ``p0``."""
        phases = [Phase("train", self.max_iter)]
        if self.finetune_iter > 0:
            lr = self.finetune_learning_rate
            phases.append(Phase("finetune", self.finetune_iter,
                                learning_rate=(self.learning_rate_init * self._finetune_lr_fraction
                                               if lr is None else lr),
                                options={"p0": float(self.p0)}))
        return phases

    def _train_losses(self, X, y, phase):
        p0 = phase.options.get("p0", 1.0)  # pruning is active in the fine-tuning phase only
        out = self.module_(X, p0=p0, k=self.k)
        final = F.cross_entropy(self.module_.upsample(out.logits), y)
        aux = [F.cross_entropy(self.module_.upsample(c), y) for c in out.stage_logits[:-1]]
        loss = final + self.aux_weight * sum(aux) if aux else final
        yield loss, {
            "loss_final": final.detach(),
            "pruned": float(p0 < 1.0),
            "active_fraction": out.n_active[:, -1].float().mean() / self.module_.n_tokens,
        }

    def _forward(self, X):
        return self.module_.upsample(self.module_(X, p0=self.p0, k=self.k).logits)

    def _validation_score(self, outputs, y):
        return mean_iou(y, outputs.argmax(1).numpy(), labels=np.arange(len(self.classes_)))

    # -------------------------------------------------------------- predict
    def _run(self, X, p0):
        """Token logits, exit stages and active counts for validated images."""
        def run(xb):
            out = self.module_(xb, p0=p0, k=self.k)
            return out.logits.float(), out.exit_stage, out.n_active

        logits, exits, counts = self._infer(X, run, batch_size=max(self.batch_size, 64))
        return logits, exits.numpy(), counts.numpy()

    def _report(self, exits, counts, p0):
        m = self.module_
        return PruningReport(
            tokens_active=counts,
            exit_stage=exits.reshape(len(exits), *m.grid),
            flops=m.flops(counts, aux_heads=p0 < 1.0),
            flops_unpruned=m.flops_unpruned(),
            n_tokens=m.n_tokens,
        )

    def _proba(self, X, p0):
        logits, exits, counts = self._run(X, p0)
        proba = torch.softmax(self.module_.upsample(logits).double(), dim=1).numpy()
        return proba, self._report(exits, counts, p0)

    def _shape_out(self, a):
        # 1-D targets at fit (1x1 images): predictions are 1-D too
        return a.reshape(a.shape[:-2]) if self.masks_ndim_ == 1 else a

    def predict_proba(self, X, return_report=False):
        """Class probabilities of every pixel.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, C, H, W) or (n_samples, H, W)
            Images.
        return_report : bool, default=False
            Also return the :class:`PruningReport` of this prediction.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes, H, W)
            Probabilities, classes in the order of ``classes_``.
        report : PruningReport
            Only with ``return_report=True``.
        """
        check_is_fitted(self, "module_")
        X, _ = self._validate(X, reset=False)
        proba, report = self._proba(X, self.p0)
        proba = self._shape_out(proba)
        return (proba, report) if return_report else proba

    def predict(self, X, return_report=False):
        """Predicted label masks.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, C, H, W) or (n_samples, H, W)
            Images.
        return_report : bool, default=False
            Also return the :class:`PruningReport` (tokens active per stage,
            exit stage of every token, FLOPs per image vs the unpruned model).

        Returns
        -------
        masks : ndarray of shape (n_samples, H, W)
            Labels from ``classes_``.
        report : PruningReport
            Only with ``return_report=True``.
        """
        check_is_fitted(self, "module_")
        X, _ = self._validate(X, reset=False)
        logits, exits, counts = self._run(X, self.p0)
        masks = self.classes_[self.module_.upsample(logits).argmax(1).numpy()]
        masks = self._shape_out(masks)
        return (masks, self._report(exits, counts, self.p0)) if return_report else masks

    def score(self, X, y, sample_weight=None):
        """Mean intersection over union of the predicted masks.

        Parameters
        ----------
        X : array-like of shape (n_samples, C, H, W) or (n_samples, H, W)
            Images.
        y : array-like of shape (n_samples, H, W)
            True label masks.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each image's pixels.

        Returns
        -------
        score : float
            Mean IoU over the classes in ``y`` or the prediction, see :func:`mean_iou`.
        """
        pred = self.predict(X)
        y = np.asarray(y)
        if y.shape != pred.shape:
            raise ValueError(f"y has shape {y.shape} but the predicted masks have shape {pred.shape}.")
        return mean_iou(y, pred, sample_weight=sample_weight)

    def _fitted_metadata(self):
        meta = super()._fitted_metadata()
        meta["masks_ndim_"] = int(self.masks_ndim_)
        return meta

    def _restore_metadata(self, meta):
        super()._restore_metadata(meta)
        self.masks_ndim_ = int(meta["masks_ndim_"])
