"""Offline segmentation data: a synthetic generator and a loader for image/mask folders."""

import numpy as np
from sklearn.utils import check_random_state, check_scalar

from ..datasets import SegmentationFolderDataset

__all__ = ["make_segmentation", "load_segmentation_folder"]

# class-specific base colours (class 0 is the background)
_PALETTE = np.array([
    [0.45, 0.45, 0.40], [0.85, 0.20, 0.20], [0.20, 0.70, 0.25], [0.20, 0.35, 0.85],
    [0.90, 0.80, 0.20], [0.70, 0.25, 0.80], [0.20, 0.80, 0.80], [0.95, 0.55, 0.15],
])


def _blur(img):
    """3x3 box blur of a (C, H, W) image (edge padding): soft, ambiguous boundaries."""
    p = np.pad(img, ((0, 0), (1, 1), (1, 1)), mode="edge")
    H, W = img.shape[1:]
    return sum(p[:, i:i + H, j:j + W] for i in range(3) for j in range(3)) / 9.0


def make_segmentation(n_samples=200, *, image_size=32, n_classes=4, max_shapes=3, noise=0.06,
                      random_state=None):
    """Synthetic semantic segmentation: textured shapes on a textured background.

    Every image has a smooth, low-frequency background (class 0) and 1 to
    ``max_shapes`` shapes (rectangles, discs, triangles; later shapes occlude
    earlier ones). A shape's class sets its colour (jittered per shape) and
    its texture (stripes with a class-specific orientation and frequency);
    the shape type is independent of the class. Large flat regions are easy
    tokens, shape boundaries (blurred, mixed in one patch) are hard ones;
    Gaussian pixel noise is added last.

    Parameters
    ----------
    n_samples : int, default=200
        Number of images.
    image_size : int, default=32
        Height and width in pixels.
    n_classes : int, default=4
        Number of classes including the background (2 to 8).
    max_shapes : int, default=3
        Maximum number of shapes per image.
    noise : float, default=0.06
        Standard deviation of the Gaussian pixel noise.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    X : ndarray of shape (n_samples, 3, image_size, image_size), float32
        RGB images in [0, 1].
    masks : ndarray of shape (n_samples, image_size, image_size), int64
        Class of every pixel, in ``range(n_classes)``.

    Examples
    --------
    >>> from neural.segmentation import make_segmentation
    >>> X, masks = make_segmentation(10, image_size=16, random_state=0)
    >>> X.shape, masks.shape
    ((10, 3, 16, 16), (10, 16, 16))
    """
    check_scalar(n_samples, "n_samples", int, min_val=1)
    check_scalar(image_size, "image_size", int, min_val=4)
    check_scalar(n_classes, "n_classes", int, min_val=2, max_val=len(_PALETTE))
    check_scalar(max_shapes, "max_shapes", int, min_val=1)
    check_scalar(noise, "noise", float, min_val=0)
    rng = check_random_state(random_state)
    S = image_size
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float64) / S
    # stripes per class: angle and frequency
    angles = np.linspace(0, np.pi, n_classes, endpoint=False) + 0.3
    freqs = 3.0 + 2.0 * np.arange(n_classes)
    X = np.empty((n_samples, 3, S, S), dtype=np.float32)
    masks = np.zeros((n_samples, S, S), dtype=np.int64)
    for i in range(n_samples):
        # background: colour + smooth random gradient
        a, b, c = rng.uniform(-0.15, 0.15, size=3)
        bg = _PALETTE[0][:, None, None] + (a * xx + b * yy + c * np.sin(2 * np.pi * (xx + yy)))[None]
        img = bg.copy()
        mask = np.zeros((S, S), dtype=np.int64)
        for _ in range(rng.randint(1, max_shapes + 1)):
            cls = rng.randint(1, n_classes)
            kind = rng.randint(3)
            cx, cy = rng.uniform(0.2, 0.8, size=2)
            r = rng.uniform(0.12, 0.3)
            if kind == 0:
                rx, ry = r, rng.uniform(0.6, 1.4) * r
                region = (np.abs(xx - cx) < rx) & (np.abs(yy - cy) < ry)
            elif kind == 1:
                region = (xx - cx) ** 2 + (yy - cy) ** 2 < r ** 2
            else:
                region = (yy - cy < r) & (yy - cy > -r + 2 * np.abs(xx - cx) * 1.2)
            if not region.any():
                continue
            colour = np.clip(_PALETTE[cls] + rng.normal(0, 0.07, size=3), 0, 1)
            t = np.cos(angles[cls]) * xx + np.sin(angles[cls]) * yy
            stripes = 0.12 * np.sign(np.sin(2 * np.pi * freqs[cls] * t + rng.uniform(0, 2 * np.pi)))
            shape_img = colour[:, None, None] + stripes[None]
            img = np.where(region[None], shape_img, img)
            mask[region] = cls
        img = _blur(img) + rng.normal(0, noise, size=img.shape)
        X[i] = np.clip(img, 0, 1)
        masks[i] = mask
    return X, masks


def load_segmentation_folder(image_dir, mask_dir, *, image_size=None):
    """Load user images and their label masks, paired by file name (without extension).

    The items of :class:`neural.datasets.SegmentationFolderDataset` (which
    reads the files lazily and describes the formats), stacked in memory.

    Parameters
    ----------
    image_dir : str or path-like
        Folder of images.
    mask_dir : str or path-like
        Folder of masks with the same file stems.
    image_size : int or None, default=None
        Common square size to resize to; None requires every image to have
        the same size already.

    Returns
    -------
    X : ndarray of shape (n_images, C, H, W), float32
        Images; 8-bit images are scaled to [0, 1] (the items of
        :class:`neural.datasets.SegmentationFolderDataset`, stacked).
    masks : ndarray of shape (n_images, H, W), int64
        Class index of every pixel.

    Raises
    ------
    ValueError
        If a folder is missing or empty, an image has no mask, sizes differ
        and ``image_size`` is None, or a mask is not single-channel.
    """
    data = SegmentationFolderDataset(image_dir, mask_dir, image_size=image_size)
    items = [data[i] for i in range(len(data))]
    shapes = {x.shape for x, _ in items}
    if len(shapes) > 1:
        raise ValueError(f"images have different shapes {sorted(shapes)}; pass image_size= to "
                         "resize them to one size.")
    return np.stack([x for x, _ in items]), np.stack([m for _, m in items])
