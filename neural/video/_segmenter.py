"""ASTRSegmenter: ASTR behind scikit-learn's fit / predict, over videos."""

import numbers

import numpy as np
import torch
from sklearn.utils import check_scalar
from sklearn.utils.validation import check_is_fitted

from .._utils import check_option, to_numpy
from ..base import BaseTorchEstimator
from ._metrics import dice_score, segmentation_scores
from ._model import ASTRNet, astr_loss
from ._scan import detect_scan_mode, linear_to_sector, sector_to_linear

__all__ = ["ASTRSegmenter", "make_clips"]


def make_clips(n_frames_video, clip_length):
    """Frame indices of the clip of every frame: ``[i, i-1, ..., i-(T-1)]``.

    An earlier frame that does not exist (near the start of the video) is
    replaced by the frame as far *after* ``i`` (clamped to the last frame),
    as ASTR's data loader does.

    Parameters
    ----------
    n_frames_video : int
        Frames in the video.
    clip_length : int
        T, the key frame included.

    Returns
    -------
    index : ndarray of int, shape (n_frames_video, clip_length)
        Row i is the clip of frame i; column 0 is i itself.
    """
    i = np.arange(n_frames_video)[:, None]
    k = np.arange(clip_length)[None, :]
    idx = np.where(i - k >= 0, i - k, np.minimum(i + k, n_frames_video - 1))
    return idx.astype(np.int64)


class ASTRSegmenter(BaseTorchEstimator):
    """Lesion segmentation in ultrasound videos with ASTR (adaptive sparse-context transformer).

    Every frame is segmented from a clip ``[t, t-1, ..., t-T+1]``: a shared
    CNN encodes all frames; a *body head* on the auxiliary (earlier) frames,
    trained on dilated masks, predicts the lesion's neighbourhood, and only
    the positions it selects (logit > 0) become context tokens; the key
    frame's tokens go through self-attention and then one cross-attention
    block to the sparse context tokens; a small decoder with skips from the
    encoder outputs the key frame's mask. The loss is BCE + Dice + L1 on the
    key frame plus ``aux_weight`` times the same loss of the body maps. With
    ``scan_augment`` every training video is also added in the other
    scanning mode (linear <-> sector), balancing the two modes.

    ``n_frames=1`` gives the same network on single frames (no context).

    Parameters
    ----------
    n_frames : int, default=3
        Clip length T (the key frame and T-1 earlier frames).
    width : int, default=8
        Channels of the full-resolution encoder stage (x2 at half resolution).
    embed_dim : int, default=32
        Token dimension (features at a quarter of the resolution).
    num_heads : int, default=4
        Attention heads; must divide ``embed_dim``.
    depth : int, default=1
        Self-attention blocks on the key frame.
    context : {"sparse", "dense"}, default="sparse"
        Cross-attend to the body-selected tokens of the auxiliary frames, or
        to all of them (the dense baseline; same weights, so it can be set
        after fitting to compare).
    aux_weight : float, default=0.3
        Weight of the body-map loss.
    body_dilation : int, default=2
        Radius in pixels of the dilation of auxiliary masks that supervise the
        body head.
    scan_augment : bool, default=True
        Add every training video converted to the other scanning mode
        (detected from blank corners, or given as ``scan_modes`` to ``fit``).
    fan_angle : float, default=60.0
        Fan angle (degrees) of the scanning-mode conversion.
    inner_radius : float, default=0.2
        Inner radius of the fan, as a fraction of the outer radius.
    threshold : float, default=0.5
        Probability above which a pixel is predicted as lesion.
    {base_params}

    Attributes
    ----------
    module_ : ASTRNet
        The trained network.
    input_shape_ : tuple of int
        (C, H, W) of a frame.
    n_features_in_ : int
        C * H * W.
    mean_, std_ : float
        Intensity normalisation learned from the training frames.
    history_ : list of dict
        Per-epoch loss, key-frame loss, share of context tokens kept, time.

    Examples
    --------
    >>> from neural.video import ASTRSegmenter, make_ultrasound_videos
    >>> X, M, _ = make_ultrasound_videos(6, n_frames=4, random_state=0)
    >>> est = ASTRSegmenter(max_iter=2, random_state=0, device="cpu").fit(X, M)
    >>> est.predict(X).shape
    (6, 4, 32, 32)
    """

    def __init__(
        self,
        n_frames=3,
        *,
        width=8,
        embed_dim=32,
        num_heads=4,
        depth=1,
        context="sparse",
        aux_weight=0.3,
        body_dilation=2,
        scan_augment=True,
        fan_angle=60.0,
        inner_radius=0.2,
        threshold=0.5,
        max_iter=30,
        batch_size=16,
        solver="adam",
        learning_rate_init=3e-3,
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
    ):
        super().__init__(
            max_iter=max_iter, batch_size=batch_size, solver=solver,
            learning_rate_init=learning_rate_init, learning_rate=learning_rate,
            momentum=momentum, nesterovs_momentum=nesterovs_momentum, weight_decay=weight_decay,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, tol=tol, random_state=random_state,
            verbose=verbose, warm_start=warm_start, device=device,
        )
        self.n_frames = n_frames
        self.width = width
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.depth = depth
        self.context = context
        self.aux_weight = aux_weight
        self.body_dilation = body_dilation
        self.scan_augment = scan_augment
        self.fan_angle = fan_angle
        self.inner_radius = inner_radius
        self.threshold = threshold

    # ---------------------------------------------------------- parameters
    @property
    def input_shape(self):
        # not a parameter here: videos carry their own frame shape
        return None

    @input_shape.setter
    def input_shape(self, value):
        pass

    def _check_params(self):
        super()._check_params()
        for name in ("n_frames", "width", "embed_dim", "num_heads", "depth"):
            check_scalar(getattr(self, name), name, numbers.Integral, min_val=1)
        if self.embed_dim % self.num_heads:
            raise ValueError(f"num_heads={self.num_heads} must divide embed_dim={self.embed_dim}.")
        check_option("context", self.context, ("sparse", "dense"))
        check_scalar(self.aux_weight, "aux_weight", numbers.Real, min_val=0)
        check_scalar(self.body_dilation, "body_dilation", numbers.Integral, min_val=0)
        if not isinstance(self.scan_augment, (bool, np.bool_)):
            raise ValueError(f"scan_augment must be True or False; got {self.scan_augment!r}.")
        check_scalar(self.fan_angle, "fan_angle", numbers.Real, min_val=0, max_val=180,
                     include_boundaries="right")
        check_scalar(self.inner_radius, "inner_radius", numbers.Real, min_val=0, max_val=1,
                     include_boundaries="left")
        check_scalar(self.threshold, "threshold", numbers.Real, min_val=0, max_val=1,
                     include_boundaries="neither")

    # -------------------------------------------------------------- inputs
    @staticmethod
    def _split_videos(X, name, mask):
        """List of per-video arrays from an array or a list, and whether X was one array."""
        X = to_numpy(X)
        want = "(n_frames, H, W)" if mask else "(n_frames, H, W) or (n_frames, C, H, W)"
        if isinstance(X, (list, tuple)):
            if len(X) == 0:
                raise ValueError(f"{name} is an empty list; pass at least one video.")
            vids = [np.asarray(to_numpy(v)) for v in X]
            stacked = False
        else:
            X = np.asarray(X)
            ok = (4,) if mask else (4, 5)
            if X.ndim not in ok or X.dtype == object:
                shape = "(n_videos, n_frames, H, W)" + (
                    "" if mask else " or (n_videos, n_frames, C, H, W)")
                raise ValueError(
                    f"{name} must be an array of shape {shape}, or a list of videos of shape "
                    f"{want}; got an array of shape {X.shape}."
                )
            vids, stacked = list(X), True
        for i, v in enumerate(vids):
            if v.ndim not in ((3,) if mask else (3, 4)) or v.shape[0] < 1:
                raise ValueError(f"{name}[{i}] must have shape {want}; got shape {v.shape}.")
            if v.dtype.kind not in "biuf":
                raise ValueError(f"{name}[{i}] must be numeric; got dtype {v.dtype}.")
            if v.dtype.kind == "f" and not np.isfinite(v).all():
                raise ValueError(f"{name}[{i}] contains NaN or infinity.")
        return vids, stacked

    def _validate_videos(self, X, y=None, *, reset):
        vids, stacked = self._split_videos(X, "videos", mask=False)
        vids = [(v[:, None] if v.ndim == 3 else v).astype(np.float32) for v in vids]
        shapes = {v.shape[1:] for v in vids}
        if len(shapes) > 1:
            raise ValueError(f"videos have frames of different shapes {sorted(shapes)}; "
                             "resize them to one (C, H, W).")
        shape = shapes.pop()
        if min(shape[1:]) < 4:
            raise ValueError(f"frames must be at least 4x4 pixels; got {shape[1:]}.")
        if reset:
            self.input_shape_ = tuple(int(s) for s in shape)
            self.n_features_in_ = int(np.prod(shape))
        elif shape != tuple(self.input_shape_):
            raise ValueError(f"videos have frames of shape {shape}, but {type(self).__name__} "
                             f"was fitted on frames of shape {tuple(self.input_shape_)}.")
        masks = None
        if y is not None:
            masks, _ = self._split_videos(y, "masks", mask=True)
            if len(masks) != len(vids):
                raise ValueError(f"got {len(vids)} videos but {len(masks)} mask videos.")
            for i, (v, m) in enumerate(zip(vids, masks)):
                if m.shape != (v.shape[0], *v.shape[2:]):
                    raise ValueError(
                        f"masks[{i}] has shape {m.shape}; it must be (n_frames, H, W) = "
                        f"{(v.shape[0], *v.shape[2:])} to match videos[{i}]."
                    )
                if not np.isin(m, (0, 1)).all():
                    raise ValueError(f"masks[{i}] must be binary (0 / 1 or bool); got values "
                                     f"{np.unique(m)[:5].tolist()}...")
            masks = [m.astype(np.float32) for m in masks]
        return vids, masks, stacked

    def _augment(self, vids, masks, scan_modes):
        if scan_modes is None:
            scan_modes = [detect_scan_mode(v) for v in vids]
        scan_modes = list(scan_modes)
        if len(scan_modes) != len(vids):
            raise ValueError(f"scan_modes has {len(scan_modes)} entries for {len(vids)} videos.")
        geom = dict(angle=self.fan_angle, inner_radius=self.inner_radius)
        new_v, new_m = [], []
        for v, m, mode in zip(vids, masks, scan_modes):
            check_option("scan_modes", mode, ("linear", "sector"))
            fn = sector_to_linear if mode == "sector" else linear_to_sector
            new_v.append(fn(v, interpolation="bilinear", **geom).astype(np.float32))
            new_m.append(fn(m, interpolation="nearest", **geom).astype(np.float32))
        return vids + new_v, masks + new_m

    def _clips(self, vids, masks=None):
        X, Y = [], []
        for i, v in enumerate(vids):
            idx = make_clips(len(v), self.n_frames)
            X.append((v[idx] - self.mean_) / self.std_)
            if masks is not None:
                Y.append(masks[i][idx])
        X = np.concatenate(X).astype(np.float32)
        return X, (np.concatenate(Y) if masks is not None else None)

    # --------------------------------------------------------------- model
    def _build_module(self):
        return ASTRNet(self.input_shape_[0], self.n_frames, width=self.width, dim=self.embed_dim,
                       heads=self.num_heads, depth=self.depth, context=self.context)

    def _compute_loss(self, X, y):
        out = self.module_(X)
        return astr_loss(out, y, aux_weight=self.aux_weight, dilation=self.body_dilation)[0]

    def _train_step(self, X, y):
        self.optimizer_.zero_grad(set_to_none=True)
        out = self.module_(X, dense=self.context == "dense")
        loss, key = astr_loss(out, y, aux_weight=self.aux_weight, dilation=self.body_dilation)
        loss.backward()
        self.optimizer_.step()
        stats = {"loss": float(loss.detach()), "loss_key": float(key.detach())}
        if out.body_logits is not None:
            stats["token_fraction"] = float(out.n_tokens.float().mean()
                                            / out.body_logits[0].numel())
        return stats

    def _forward(self, X):
        return self.module_(X, dense=self.context == "dense").logits[:, 0]

    def _validation_score(self, outputs, y):
        return dice_score(y[:, 0], (torch.sigmoid(outputs) > self.threshold).numpy())

    # ----------------------------------------------------------------- fit
    def fit(self, X, y, scan_modes=None):
        """Train on videos and their per-frame lesion masks.

        Parameters
        ----------
        X : array-like of shape (n_videos, n_frames, H, W) or (n_videos, n_frames, C, H, W), or list of videos
            Training videos; a list may hold videos of different lengths, each
            of shape (n_frames_i, H, W) or (n_frames_i, C, H, W).
        y : array-like of shape (n_videos, n_frames, H, W), or list of (n_frames_i, H, W)
            Binary lesion masks of every frame.
        scan_modes : array-like of {"linear", "sector"} or None, default=None
            Scanning mode of each video, for ``scan_augment`` (None: detected
            from the blank corners of sector frames).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._check_params()
        resume = self.warm_start and hasattr(self, "module_")
        vids, masks, _ = self._validate_videos(X, y, reset=not resume)
        if y is None:
            raise ValueError("ASTRSegmenter requires masks y; got None.")
        if self.scan_augment:
            vids, masks = self._augment(vids, masks, scan_modes)
        if not resume:
            frames = np.concatenate(vids)
            self.mean_, self.std_ = float(frames.mean()), float(frames.std() + 1e-6)
        Xc, Yc = self._clips(vids, masks)
        return self._fit(Xc, Yc, resume=resume, n_epochs=self.max_iter, incremental=False)

    def partial_fit(self, X, y, scan_modes=None):
        """One epoch over ``X, y`` from the current weights (see :meth:`fit`).

        Parameters
        ----------
        X : array-like or list of videos
            As in :meth:`fit`.
        y : array-like or list of masks
            As in :meth:`fit`.
        scan_modes : array-like or None, default=None
            As in :meth:`fit`.

        Returns
        -------
        self : object
            The updated estimator.
        """
        first = not hasattr(self, "module_")
        if first:
            self._check_params()
        vids, masks, _ = self._validate_videos(X, y, reset=first)
        if y is None:
            raise ValueError("ASTRSegmenter requires masks y; got None.")
        if self.scan_augment:
            vids, masks = self._augment(vids, masks, scan_modes)
        if first:
            frames = np.concatenate(vids)
            self.mean_, self.std_ = float(frames.mean()), float(frames.std() + 1e-6)
        Xc, Yc = self._clips(vids, masks)
        return self._fit(Xc, Yc, resume=not first, n_epochs=1, incremental=True)

    # ------------------------------------------------------------- predict
    def _per_video(self, X, fn):
        check_is_fitted(self, "module_")
        self._check_params()
        vids, _, stacked = self._validate_videos(X, reset=False)
        Xc, _ = self._clips(vids)
        out = fn(Xc)
        res, start = [], 0
        for v in vids:
            res.append(out[start:start + len(v)])
            start += len(v)
        return np.stack(res) if stacked else res

    def predict_proba(self, X):
        """Lesion probability of every pixel of every frame.

        Parameters
        ----------
        X : array-like of shape (n_videos, n_frames, [C,] H, W), or list of videos
            Videos.

        Returns
        -------
        proba : ndarray of shape (n_videos, n_frames, H, W), or list of (n_frames_i, H, W)
            A list when ``X`` is a list.
        """
        return self._per_video(
            X, lambda Xc: torch.sigmoid(self._predict_outputs(Xc).double()).numpy())

    def predict(self, X):
        """Binary lesion mask of every frame (probability > ``threshold``).

        Parameters
        ----------
        X : array-like of shape (n_videos, n_frames, [C,] H, W), or list of videos
            Videos.

        Returns
        -------
        masks : ndarray of uint8, shape (n_videos, n_frames, H, W), or list
            A list when ``X`` is a list.
        """
        proba = self.predict_proba(X)
        if isinstance(proba, list):
            return [(p > self.threshold).astype(np.uint8) for p in proba]
        return (proba > self.threshold).astype(np.uint8)

    def context_tokens(self, X):
        """Number of context tokens the cross-attention of each frame attends to.

        Parameters
        ----------
        X : array-like of shape (n_videos, n_frames, [C,] H, W), or list of videos
            Videos.

        Returns
        -------
        counts : ndarray of int, shape (n_videos, n_frames), or list
            0 everywhere for ``n_frames=1``.
        """
        def run(Xc):
            self.module_.eval()
            out = []
            with torch.no_grad():
                for s in range(0, len(Xc), 256):
                    xb = self._tensor(Xc[s:s + 256], torch.float32)
                    out.append(self.module_(xb, dense=self.context == "dense").n_tokens.cpu())
            return torch.cat(out).numpy()

        return self._per_video(X, run)

    def score(self, X, y, sample_weight=None):
        """Mean per-frame Dice of the predicted masks.

        Parameters
        ----------
        X : array-like or list of videos
            Videos.
        y : array-like or list of masks
            True binary masks of every frame.
        sample_weight : None
            Not supported (must be None).

        Returns
        -------
        dice : float
            Mean per-frame Dice in [0, 1].
        """
        if sample_weight is not None:
            raise ValueError("ASTRSegmenter.score does not support sample_weight.")
        check_is_fitted(self, "module_")
        _, masks, _ = self._validate_videos(X, y, reset=False)
        return dice_score(masks, self.predict(X))

    def evaluate(self, X, y):
        """Dice, IoU, sensitivity, specificity and MAE, per frame then averaged.

        Parameters
        ----------
        X : array-like or list of videos
            Videos.
        y : array-like or list of masks
            True binary masks of every frame.

        Returns
        -------
        scores : dict of str to float
            See :func:`~neural.video.segmentation_scores`.
        """
        check_is_fitted(self, "module_")
        _, masks, _ = self._validate_videos(X, y, reset=False)
        proba = self.predict_proba(X)
        pred = [p > self.threshold for p in proba]
        return segmentation_scores(masks, pred, proba=list(proba))

    # -------------------------------------------------------- save / load
    def _fitted_metadata(self):
        meta = super()._fitted_metadata()
        meta["mean_"], meta["std_"] = float(self.mean_), float(self.std_)
        return meta

    def _restore_metadata(self, meta):
        super()._restore_metadata(meta)
        self.mean_, self.std_ = meta["mean_"], meta["std_"]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # videos (4-D / 5-D) in, masks out: the data-driven sklearn checks do not apply
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = False
        tags.target_tags.required = True
        return tags



def _base_params():
    doc = BaseTorchEstimator.__doc__
    text = doc[doc.index("    ----------\n", doc.index("    Parameters\n")) + 15:]
    text = text[:text.index("    input_shape :")]
    for old, new in (("max_iter : int, default=50", "max_iter : int, default=30"),
                     ("batch_size : int, default=128", "batch_size : int, default=16"),
                     ("learning_rate_init : float, default=1e-3",
                      "learning_rate_init : float, default=3e-3")):
        assert old in text, old
        text = text.replace(old, new)
    return text.strip() + "\n        (A training sample is one clip.)"


ASTRSegmenter.__doc__ = ASTRSegmenter.__doc__.replace("{base_params}", _base_params())
