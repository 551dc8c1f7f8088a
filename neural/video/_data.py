"""Offline ultrasound video data: a synthetic generator and a loader for frame folders."""

import numpy as np
from sklearn.utils import check_random_state, check_scalar

from .._utils import check_option
from ..datasets import VideoFolderDataset
from ._scan import linear_to_sector

__all__ = ["make_ultrasound_videos", "load_ultrasound_folder"]

def _smooth_noise(rng, size, n_waves=4):
    """Low-frequency texture in [0, 1]: a sum of random plane waves."""
    yy, xx = np.mgrid[:size, :size] / size
    t = np.zeros((size, size))
    for _ in range(n_waves):
        fy, fx = rng.uniform(-3, 3, 2)
        t += rng.uniform(0.5, 1) * np.cos(2 * np.pi * (fy * yy + fx * xx) + rng.uniform(0, 6.3))
    return (t - t.min()) / (np.ptp(t) + 1e-12)


def make_ultrasound_videos(n_videos=20, *, n_frames=8, image_size=32, scan_mode="mixed",
                           speckle=0.35, contrast=0.55, dropout=0.3, angle=60.0,
                           inner_radius=0.2, random_state=None):
    """Synthetic ultrasound-like videos of a drifting hypoechoic lesion, with masks.

    Every video is first rendered as a linear (rectangular) scan: a smooth
    tissue texture, a bright curved wall near the probe, and a dark
    ("hypoechoic") elliptical lesion whose centre follows a slow random walk
    and whose axes change slowly. The lesion's darkness is ``contrast``,
    except on a random share ``dropout`` of the frames where it falls to a
    fifth (shadowing / out-of-plane frames: hard to segment alone, easy with
    the earlier frames). Multiplicative speckle (gamma noise of relative
    standard deviation ``speckle``), independent per frame, comes last.
    A sector video is the linear one warped by
    :func:`~neural.video.linear_to_sector` (mask with nearest sampling).

    Parameters
    ----------
    n_videos : int, default=20
        Number of videos.
    n_frames : int, default=8
        Frames per video.
    image_size : int, default=32
        Height and width of a frame.
    scan_mode : {"mixed", "linear", "sector"}, default="mixed"
        Scanning mode of the videos; "mixed" alternates (even videos linear,
        odd ones sector).
    speckle : float, default=0.35
        Relative standard deviation of the multiplicative speckle.
    contrast : float, default=0.55
        Relative darkening of the lesion, in [0, 1].
    dropout : float, default=0.3
        Share of frames whose lesion contrast drops to ``contrast / 5``.
    angle, inner_radius : float
        Fan geometry of sector videos (see :func:`~neural.video.fan_geometry`).
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    videos : ndarray of shape (n_videos, n_frames, image_size, image_size), float32
        Frames in [0, 1] (one gray channel).
    masks : ndarray of shape (n_videos, n_frames, image_size, image_size), uint8
        1 inside the lesion.
    modes : ndarray of shape (n_videos,), str
        "linear" or "sector" per video.

    Examples
    --------
    >>> from neural.video import make_ultrasound_videos
    >>> videos, masks, modes = make_ultrasound_videos(4, n_frames=5, random_state=0)
    >>> videos.shape, masks.shape, list(modes)
    ((4, 5, 32, 32), (4, 5, 32, 32), ['linear', 'sector', 'linear', 'sector'])
    """
    check_scalar(n_videos, "n_videos", int, min_val=1)
    check_scalar(n_frames, "n_frames", int, min_val=1)
    check_scalar(image_size, "image_size", int, min_val=8)
    check_option("scan_mode", scan_mode, ("mixed", "linear", "sector"))
    check_scalar(speckle, "speckle", (int, float), min_val=0)
    check_scalar(contrast, "contrast", (int, float), min_val=0, max_val=1)
    check_scalar(dropout, "dropout", (int, float), min_val=0, max_val=1)
    rng = check_random_state(random_state)
    S = image_size
    yy, xx = np.mgrid[:S, :S].astype(np.float64)
    videos = np.empty((n_videos, n_frames, S, S), np.float32)
    masks = np.empty((n_videos, n_frames, S, S), np.uint8)
    modes = np.array([scan_mode if scan_mode != "mixed" else ("linear", "sector")[v % 2]
                      for v in range(n_videos)])
    for v in range(n_videos):
        tissue = 0.35 + 0.35 * _smooth_noise(rng, S)
        # bright wall: a shallow arc near the probe
        wall_y = S * rng.uniform(0.08, 0.18) + S * 0.08 * ((xx / S - 0.5) ** 2) * 4
        wall = 0.5 * np.exp(-(((yy - wall_y) / (0.025 * S)) ** 2))
        cy, cx = rng.uniform(0.4, 0.7) * S, rng.uniform(0.3, 0.7) * S
        ay, ax = rng.uniform(0.12, 0.2) * S, rng.uniform(0.14, 0.24) * S
        rot = rng.uniform(0, np.pi)
        vy, vx = rng.normal(0, 0.012 * S, 2)
        low = rng.rand(n_frames) < dropout
        for t in range(n_frames):
            if t:
                vy = 0.8 * vy + rng.normal(0, 0.01 * S)
                vx = 0.8 * vx + rng.normal(0, 0.01 * S)
                cy = np.clip(cy + vy, 0.3 * S, 0.8 * S)
                cx = np.clip(cx + vx, 0.25 * S, 0.75 * S)
                ay = np.clip(ay * rng.uniform(0.97, 1.03), 0.1 * S, 0.24 * S)
                ax = np.clip(ax * rng.uniform(0.97, 1.03), 0.1 * S, 0.26 * S)
            dy, dx = yy - cy, xx - cx
            u = (dy * np.cos(rot) + dx * np.sin(rot)) / ay
            w = (-dy * np.sin(rot) + dx * np.cos(rot)) / ax
            inside = u**2 + w**2 <= 1
            c = contrast / 5 if low[t] else contrast
            # soft edge so the lesion boundary is not a hard step
            soft = 1 / (1 + np.exp((np.sqrt(u**2 + w**2) - 1) * 8))
            img = (tissue + wall) * (1 - c * soft)
            if speckle > 0:
                L = 1 / speckle**2
                img = img * rng.gamma(L, 1 / L, size=img.shape)
            videos[v, t] = np.clip(img, 0, 1)
            masks[v, t] = inside
        if modes[v] == "sector":
            videos[v] = linear_to_sector(videos[v], angle=angle, inner_radius=inner_radius)
            masks[v] = linear_to_sector(masks[v], angle=angle, inner_radius=inner_radius)
    return videos, masks, modes


def load_ultrasound_folder(path, *, frames_dir="frames", masks_dir="masks"):
    """Load user videos stored as folders of frames with masks.

    The items of :class:`neural.datasets.VideoFolderDataset` (which reads
    one video at a time and describes the layout: ``path/<video>/frames/``
    and ``path/<video>/masks/``), listed in memory.

    Parameters
    ----------
    path : str or path-like
        Folder of video folders.
    frames_dir, masks_dir : str, default="frames", "masks"
        Sub-folder names.

    Returns
    -------
    videos : list of ndarray of shape (n_frames_i, H, W), float32
        Frames; 8-bit images scaled to [0, 1]. A list because videos may differ
        in length (``ASTRSegmenter`` accepts it as is; use ``np.stack`` when
        they do not).
    masks : list of ndarray of shape (n_frames_i, H, W), uint8
        Binary lesion masks.
    names : list of str
        Video folder names.

    Raises
    ------
    ValueError
        If a folder is missing or empty, a frame has no mask, or sizes differ.
    """
    data = VideoFolderDataset(path, frames_dir=frames_dir, masks_dir=masks_dir)
    items = [data[i] for i in range(len(data))]
    if len({v.shape[1:] for v, _ in items}) > 1:
        raise ValueError("videos have different frame sizes; resize them to one size first.")
    return [v for v, _ in items], [m for _, m in items], list(data.names)
