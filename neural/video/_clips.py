"""ASTR's training data: videos checked one by one, scan-mode copies, and clips of frames.

Videos come as arrays in memory or as a dataset of ``(frames, masks)`` items
(read lazily, one video at a time). Either way every video goes through the
same checks (:func:`check_video`, :func:`check_masks`), the same scan-mode
conversion and the same clip arithmetic (:class:`ClipDataset`), so a fit
from a dataset equals the fit from the same videos in memory.
"""

import numpy as np
import torch
from torch.utils.data import Dataset

from .._data import ArrayDataset, Batch
from .._utils import to_numpy
from .._validation import check_float32_range
from ._scan import linear_to_sector, sector_to_linear

__all__ = ["make_clips", "clip_rows", "check_video", "check_masks", "convert_video",
           "VideoList", "LazyVideos", "ClipDataset", "video_moments", "intensity_stats"]


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
    return clip_rows(np.arange(n_frames_video), n_frames_video, clip_length)


def clip_rows(frames, n_frames_video, clip_length):
    """Rows of :func:`make_clips` for the key frames ``frames`` only."""
    i = np.asarray(frames)[:, None]
    k = np.arange(clip_length)[None, :]
    return np.where(i - k >= 0, i - k, np.minimum(i + k, n_frames_video - 1)).astype(np.int64)


def check_video(v, name):
    """One video as float32 frames (T, C, H, W); ValueError naming ``name`` otherwise."""
    v = np.asarray(to_numpy(v))
    if v.ndim not in (3, 4) or v.shape[0] < 1:
        raise ValueError(f"{name} must have shape (n_frames, H, W) or (n_frames, C, H, W); "
                         f"got shape {v.shape}.")
    if v.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric; got dtype {v.dtype}.")
    if v.dtype.kind == "f" and not np.isfinite(v).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    check_float32_range(v, name)
    v = (v[:, None] if v.ndim == 3 else v).astype(np.float32)
    if min(v.shape[2:]) < 4:
        raise ValueError(f"frames must be at least 4x4 pixels; got {v.shape[2:]}.")
    return v


def check_masks(m, frames, name):
    """Binary masks (T, H, W) of the float32 ``frames`` (T, C, H, W), as float32."""
    m = np.asarray(to_numpy(m))
    want = (frames.shape[0], *frames.shape[2:])
    if m.shape != want:
        raise ValueError(f"{name} has shape {m.shape}; it must be (n_frames, H, W) = {want} to "
                         "match its video.")
    if not np.isin(m, (0, 1)).all():
        raise ValueError(f"{name} must be binary (0 / 1 or bool); got values "
                         f"{np.unique(m)[:5].tolist()}...")
    return m.astype(np.float32)


def convert_video(frames, masks, mode, geometry):
    """The video in the other scanning mode (frames bilinear, masks nearest)."""
    fn = sector_to_linear if mode == "sector" else linear_to_sector
    return (fn(frames, interpolation="bilinear", **geometry).astype(np.float32),
            fn(masks, interpolation="nearest", **geometry).astype(np.float32))


def video_moments(v):
    """Sum, sum of squares (float64) and size of one video's pixels."""
    return float(v.sum(dtype=np.float64)), float(np.square(v, dtype=np.float64).sum()), v.size


def intensity_stats(moments):
    """Mean and standard deviation (+1e-6) of every pixel, from :func:`video_moments` in order."""
    total = squares = count = 0.0
    for s, q, c in moments:
        total += s
        squares += q
        count += c
    mean = total / count
    return mean, float(np.sqrt(max(squares / count - mean * mean, 0.0)) + 1e-6)


class VideoList:
    """Checked videos held in memory, scan-mode copies appended."""

    def __init__(self, videos, masks):
        self.videos = list(videos)
        self.masks = list(masks)

    def __len__(self):
        return len(self.videos)

    def lengths(self):
        return [len(v) for v in self.videos]

    def get(self, i, frames=None):
        """Video ``i``'s frames and masks, only the frames at indices ``frames`` if given."""
        video, masks = self.videos[i], self.masks[i]
        if frames is not None:
            video = video[frames]
            masks = None if masks is None else masks[frames]  # None: prediction
        return video, masks


class LazyVideos:
    """Videos of a dataset of ``(frames, masks)`` items, read and checked on access.

    Index ``i < n`` is item ``i``; ``n + j`` is the ``j``-th converted copy
    (of item ``augmented[j]``, from scanning mode ``modes[j]``).
    """

    def __init__(self, dataset, frame_shape, lengths, augmented=(), modes=(), geometry=None):
        self.dataset = dataset
        self.frame_shape = tuple(frame_shape)
        self._lengths = list(lengths)
        self.augmented = list(augmented)
        self.modes = list(modes)
        self.geometry = geometry or {}

    def __len__(self):
        return len(self._lengths) + len(self.augmented)

    def lengths(self):
        return self._lengths + [self._lengths[i] for i in self.augmented]

    def read(self, i):
        """Item ``i`` checked: float32 frames (T, C, H, W) and masks (T, H, W)."""
        item = self.dataset[i]
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise ValueError(f"item {i} of the dataset must be a (frames, masks) pair; got a "
                             f"{type(item).__name__}.")
        frames = check_video(item[0], f"item {i} of the dataset: frames")
        if frames.shape[1:] != self.frame_shape:
            raise ValueError(f"item {i} of the dataset has frames of shape {frames.shape[1:]}, "
                             f"but the videos have frames of shape {self.frame_shape}.")
        return frames, check_masks(item[1], frames, f"item {i} of the dataset: masks")

    def get(self, i, frames=None):
        """Video ``i``'s frames and masks, only the frames at indices ``frames`` if given (a
        converted copy converts only those: the conversion is frame by frame)."""
        n = len(self._lengths)
        video, masks = self.read(i if i < n else self.augmented[i - n])
        if frames is not None:
            video, masks = video[frames], masks[frames]
        if i < n:
            return video, masks
        return convert_video(video, masks, self.modes[i - n], self.geometry)


class ClipDataset(Dataset):
    """Clips of every frame of every video: ``((frames[clip] - mean) / std, masks[clip])``.

    Parameters
    ----------
    videos : VideoList or LazyVideos
        The videos.
    clip_length : int
        T.
    mean, std : float
        Intensity normalisation.
    with_masks : bool, default=True
        Yield masks as targets (False: inference, ``y`` is None).
    """

    def __init__(self, videos, clip_length, mean, std, with_masks=True):
        self.videos = videos
        self.clip_length = clip_length
        self.mean, self.std = mean, std
        self.with_masks = with_masks
        lengths = videos.lengths()
        self.lengths = lengths
        self.video_of = np.repeat(np.arange(len(lengths)), lengths)
        self.frame_of = np.concatenate([np.arange(n) for n in lengths])

    def __len__(self):
        return len(self.video_of)

    def _clips(self, v, frames_index):
        rows = clip_rows(frames_index, self.lengths[v], self.clip_length)
        # read (and convert) only the frames the clips use, each once
        used, position = np.unique(rows, return_inverse=True)
        frames, masks = self.videos.get(v, used)
        position = position.reshape(rows.shape)
        x = (frames[position] - self.mean) / self.std
        return x.astype(np.float32), (masks[position] if self.with_masks else None)

    def __getitem__(self, j):
        x, y = self._clips(int(self.video_of[j]), [int(self.frame_of[j])])
        return x[0], (None if y is None else y[0])

    def __getitems__(self, indices):
        """A batch of clips, each video of the batch read once (see :class:`~neural._data.Batch`)."""
        indices = np.asarray(indices, dtype=np.int64)
        videos = self.video_of[indices]
        x = y = None
        for v in np.unique(videos):
            picked = np.flatnonzero(videos == v)
            xv, yv = self._clips(int(v), self.frame_of[indices[picked]])
            if x is None:
                x = np.empty((len(indices), *xv.shape[1:]), xv.dtype)
                y = None if yv is None else np.empty((len(indices), *yv.shape[1:]), yv.dtype)
            x[picked] = xv
            if y is not None:
                y[picked] = yv
        return Batch((torch.from_numpy(x), None if y is None else torch.from_numpy(y)))

    def materialize(self):
        """All clips in memory (video by video, vectorised) as an :class:`ArrayDataset`."""
        xs, ys = [], []
        for v, n in enumerate(self.lengths):
            x, y = self._clips(v, np.arange(n))
            xs.append(x)
            ys.append(y)
        return ArrayDataset(np.concatenate(xs), np.concatenate(ys) if self.with_masks else None)
