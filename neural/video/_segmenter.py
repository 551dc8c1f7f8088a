"""ASTRSegmenter: ASTR behind scikit-learn's fit / predict, over videos."""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._data import check_map_dataset, is_dataset
from .._estimator import BaseTorchEstimator, _reject_dataset, store_params
from .._utils import to_numpy
from .._validation import Finite
from ._clips import (
    ClipDataset,
    LazyVideos,
    VideoList,
    check_masks,
    check_video,
    convert_video,
    intensity_stats,
    make_clips,
    video_moments,
)
from ._metrics import dice_score, segmentation_scores
from ._model import ASTRNet, astr_loss
from ._scan import detect_scan_mode

__all__ = ["ASTRSegmenter", "make_clips"]


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
    fusion : {"last", "product"}, default="last"
        Where the tokens come from: the last encoder stage (a quarter of the
        resolution), or the reference code's multi-stage product fusion
        ``[f5, f4*f5, f3*f4*f5]`` of that stage and two deeper ones (an
        eighth and a sixteenth of the resolution), upsampled to the quarter
        (see :class:`~neural.video.ProductFusion`).
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
    {training_params}

    Attributes
    ----------
    input_shape_ : tuple of int
        (C, H, W) of a frame.
    n_features_in_ : int
        C * H * W.
    mean_, std_ : float
        Intensity normalisation learned from the training frames.
    {training_attributes}

    Notes
    -----
    A training sample is one clip; ``batch_size`` counts clips. ``fit`` takes
    the extra parameter ``scan_modes`` (array-like of {"linear", "sector"}
    or None): the scanning mode of each video for ``scan_augment``; None
    detects it from the blank corners of sector frames. A dataset passed to
    ``fit`` yields one ``(frames, masks)`` video per item (see
    :class:`neural.datasets.VideoFolderDataset`); videos are read and
    converted one at a time.

    Examples
    --------
    >>> from neural.video import ASTRSegmenter, make_ultrasound_videos
    >>> X, M, _ = make_ultrasound_videos(6, n_frames=4, random_state=0)
    >>> est = ASTRSegmenter(max_iter=2, random_state=0, device="cpu").fit(X, M)
    >>> est.predict(X).shape
    (6, 4, 32, 32)
    """

    _history_doc = ("``loss_key`` (the key frame's loss) and ``token_fraction`` (share of "
                    "context tokens the body head keeps)")

    _parameter_constraints = {
        **BaseTorchEstimator._parameter_constraints,
        "n_frames": [Interval(Integral, 1, None, closed="left")],
        "width": [Interval(Integral, 1, None, closed="left")],
        "embed_dim": [Interval(Integral, 1, None, closed="left")],
        "num_heads": [Interval(Integral, 1, None, closed="left")],
        "depth": [Interval(Integral, 1, None, closed="left")],
        "context": [StrOptions({"sparse", "dense"})],
        "fusion": [StrOptions({"last", "product"})],
        "aux_weight": [Finite(Real, 0, None, closed="left")],
        "body_dilation": [Interval(Integral, 0, None, closed="left")],
        "scan_augment": ["boolean"],
        "fan_angle": [Finite(Real, 0, 180, closed="right")],
        "inner_radius": [Finite(Real, 0, 1, closed="left")],
        "threshold": [Finite(Real, 0, 1, closed="neither")],
    }

    __metadata_request__fit = __metadata_request__partial_fit = {"scan_modes": None}

    def __init__(
        self,
        n_frames=3,
        *,
        width=8,
        embed_dim=32,
        num_heads=4,
        depth=1,
        context="sparse",
        fusion="last",
        aux_weight=0.3,
        body_dilation=2,
        scan_augment=True,
        fan_angle=60.0,
        inner_radius=0.2,
        threshold=0.5,
        max_iter=30,
        batch_size=16,
        solver="adam",
        optimizer_kwargs=None,
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
        num_workers=0,
        precision="32",
        distributed="auto",
        callbacks=None,
    ):
        store_params(self, locals())

    # ---------------------------------------------------------- parameters
    def _check_params(self):
        super()._check_params()
        if self.embed_dim % self.num_heads:
            raise ValueError(f"num_heads={self.num_heads} must divide embed_dim={self.embed_dim}.")

    def _geometry(self):
        return dict(angle=self.fan_angle, inner_radius=self.inner_radius)

    # -------------------------------------------------------------- inputs
    @staticmethod
    def _split_videos(X, name, mask):
        """List of per-video arrays from an array or a list, and whether X was one array."""
        X = to_numpy(X)
        if isinstance(X, (list, tuple)):
            if len(X) == 0:
                raise ValueError(f"{name} is an empty list; pass at least one video.")
            return list(X), False
        X = np.asarray(X)
        ok = (4,) if mask else (4, 5)
        if X.ndim not in ok or X.dtype == object:
            shape = "(n_videos, n_frames, H, W)" + ("" if mask else " or (n_videos, n_frames, C, H, W)")
            want = "(n_frames, H, W)" if mask else "(n_frames, H, W) or (n_frames, C, H, W)"
            raise ValueError(
                f"{name} must be an array of shape {shape}, or a list of videos of shape "
                f"{want}; got an array of shape {X.shape}."
            )
        return list(X), True

    def _frame_shape(self, shape, reset):
        if reset:
            self.input_shape_ = tuple(int(s) for s in shape)
            self.n_features_in_ = int(np.prod(shape))
        elif tuple(shape) != tuple(self.input_shape_):
            raise ValueError(f"videos have frames of shape {tuple(shape)}, but "
                             f"{type(self).__name__} was fitted on frames of shape "
                             f"{tuple(self.input_shape_)}.")

    def _validate_videos(self, X, y=None, *, reset):
        raw, stacked = self._split_videos(X, "videos", mask=False)
        vids = [check_video(v, f"videos[{i}]") for i, v in enumerate(raw)]
        shapes = {v.shape[1:] for v in vids}
        if len(shapes) > 1:
            raise ValueError(f"videos have frames of different shapes {sorted(shapes)}; "
                             "resize them to one (C, H, W).")
        self._frame_shape(shapes.pop(), reset)
        masks = None
        if y is not None:
            raw_masks, _ = self._split_videos(y, "masks", mask=True)
            if len(raw_masks) != len(vids):
                raise ValueError(f"got {len(vids)} videos but {len(raw_masks)} mask videos.")
            masks = [check_masks(m, v, f"masks[{i}]") for i, (v, m) in enumerate(zip(vids, raw_masks))]
        return vids, masks, stacked

    def _scan_modes(self, scan_modes, n, detect):
        """Scanning mode of each of ``n`` videos (given, or detected by ``detect(i)``)."""
        modes = [detect(i) for i in range(n)] if scan_modes is None else list(to_numpy(scan_modes))
        if len(modes) != n:
            raise ValueError(f"scan_modes has {len(modes)} entries for {n} videos.")
        for mode in modes:
            if mode not in ("linear", "sector"):
                raise ValueError(f"scan_modes must hold 'linear' or 'sector'; got {mode!r}.")
        return modes

    def _augment(self, vids, masks, scan_modes):
        modes = self._scan_modes(scan_modes, len(vids), lambda i: detect_scan_mode(vids[i]))
        converted = [convert_video(v, m, mode, self._geometry())
                     for v, m, mode in zip(vids, masks, modes)]
        return vids + [c[0] for c in converted], masks + [c[1] for c in converted]

    def _get_dataset(self, X, y, *, reset, classes=None, scan_modes=None):
        if is_dataset(X):
            if y is not None:
                raise ValueError("pass either a dataset of (frames, masks) videos as X with "
                                 "y=None, or arrays X and y; got a dataset and y.")
            return self._lazy_clips(X, reset=reset, scan_modes=scan_modes)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             "is None.")
        vids, masks, _ = self._validate_videos(X, y, reset=reset)
        if self.scan_augment:
            vids, masks = self._augment(vids, masks, scan_modes)
        if reset:
            self.mean_, self.std_ = intensity_stats(video_moments(v) for v in vids)
        return ClipDataset(VideoList(vids, masks), self.n_frames, self.mean_,
                           self.std_).materialize()

    def _lazy_clips(self, dataset, *, reset, scan_modes):
        """A dataset of videos: one pass checks them, detects modes and (``reset``) normalises."""
        n = check_map_dataset(dataset)
        first = check_video(dataset[0][0], "item 0 of the dataset: frames")
        self._frame_shape(first.shape[1:], reset)
        if self.scan_augment and scan_modes is not None:
            self._scan_modes(scan_modes, n, None)
        source = LazyVideos(dataset, self.input_shape_, [0] * n)
        lengths, modes, originals, copies = [], [], [], []
        for i in range(n):
            frames, masks = source.read(i)
            lengths.append(len(frames))
            originals.append(video_moments(frames))
            if self.scan_augment:
                modes.append(detect_scan_mode(frames) if scan_modes is None else scan_modes[i])
                if reset:
                    copies.append(video_moments(convert_video(frames, masks, modes[-1],
                                                              self._geometry())[0]))
        if self.scan_augment:
            modes = self._scan_modes(modes, n, None)
        if reset:  # originals first, then copies: the order of the in-memory sums
            self.mean_, self.std_ = intensity_stats(originals + copies)
        videos = LazyVideos(dataset, self.input_shape_, lengths,
                            list(range(n)) if self.scan_augment else [], modes, self._geometry())
        return ClipDataset(videos, self.n_frames, self.mean_, self.std_)

    # --------------------------------------------------------------- model
    def _build_module(self):
        return ASTRNet(self.input_shape_[0], self.n_frames, width=self.width, dim=self.embed_dim,
                       heads=self.num_heads, depth=self.depth, context=self.context,
                       fusion=self.fusion)

    def _train_losses(self, X, y, phase):
        out = self.module_(X, dense=self.context == "dense")
        loss, key = astr_loss(out, y, aux_weight=self.aux_weight, dilation=self.body_dilation)
        stats = {"loss_key": key.detach()}
        if out.body_logits is not None:
            stats["token_fraction"] = out.n_tokens.float().mean() / out.body_logits[0].numel()
        yield loss, stats

    def _forward(self, X):
        return self.module_(X, dense=self.context == "dense").logits[:, 0]

    def _validation_score(self, outputs, y):
        return dice_score(y[:, 0], (torch.sigmoid(outputs) > self.threshold).numpy())

    # ------------------------------------------------------------- predict
    def _per_video(self, X, fn):
        check_is_fitted(self, "module_")
        _reject_dataset(X)
        vids, _, stacked = self._validate_videos(X, reset=False)
        clips = ClipDataset(VideoList(vids, [None] * len(vids)), self.n_frames, self.mean_,
                            self.std_, with_masks=False).materialize()
        out = fn(clips.x)
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
        X : array-like or list of videos
            As in :meth:`predict_proba`.

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
        X : array-like or list of videos
            Videos, in any format :meth:`predict_proba` takes.

        Returns
        -------
        counts : ndarray of int, shape (n_videos, n_frames), or list
            0 everywhere for ``n_frames=1``.
        """
        def run(Xc):
            return self._infer(
                Xc, lambda xb: self.module_(xb, dense=self.context == "dense").n_tokens,
                batch_size=256).numpy()

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
        tags.target_tags.required = True
        return tags
