"""Image data available offline: synthetic shapes and scikit-learn's digits."""

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.utils import check_random_state
from torch.nn import functional as F

__all__ = ["SHAPE_NAMES", "make_shapes", "load_digits_images"]

SHAPE_NAMES = (
    "horizontal bar",
    "vertical bar",
    "diagonal",
    "anti-diagonal",
    "plus",
    "cross",
    "square outline",
    "disk",
    "ring",
    "corner dots",
)


def _distance(label, u, v):
    """Distance to the stroke of shape ``label`` in shape coordinates (u, v)."""
    inside = (np.abs(u) <= 1) & (np.abs(v) <= 1)
    far = np.where(inside, 0.0, np.inf)
    if label == 0:
        return np.abs(v) + far
    if label == 1:
        return np.abs(u) + far
    if label == 2:
        return np.abs(u - v) / np.sqrt(2) + far
    if label == 3:
        return np.abs(u + v) / np.sqrt(2) + far
    if label == 4:
        return np.minimum(np.abs(u), np.abs(v)) + far
    if label == 5:
        return np.minimum(np.abs(u - v), np.abs(u + v)) / np.sqrt(2) + far
    if label == 6:
        return np.abs(np.maximum(np.abs(u), np.abs(v)) - 0.8)
    r = np.hypot(u, v)
    if label == 7:
        return np.maximum(r - 0.7, 0.0)
    if label == 8:
        return np.abs(r - 0.7)
    return np.hypot(np.abs(u) - 0.6, np.abs(v) - 0.6) - 0.15


def _draw_stroke(img, gx, gy, thickness, rng):
    """Blend a short segment of random position, angle and colour into ``img``."""
    cx, cy = rng.uniform(-0.8, 0.8, size=2)
    angle = rng.uniform(0, np.pi)
    half = rng.uniform(0.1, 0.25)
    dx, dy = gx - cx, gy - cy
    along = dx * np.cos(angle) + dy * np.sin(angle)
    across = -dx * np.sin(angle) + dy * np.cos(angle)
    dist = np.hypot(np.maximum(np.abs(along) - half, 0.0), across)
    mask = np.clip(1.0 - dist / thickness, 0.0, 1.0)
    colour = rng.uniform(0.3, 1.0, size=img.shape[0])
    return img * (1 - mask) + colour[:, None, None] * mask


def make_shapes(
    n_samples=1000,
    *,
    image_size=16,
    n_channels=3,
    n_classes=10,
    noise=0.1,
    n_distractors=0,
    random_state=None,
):
    """Synthetic image classification: ten kinds of shapes with random pose.

    Each image shows one shape (bars, diagonals, plus, cross, square outline,
    disk, ring, corner dots; see :data:`SHAPE_NAMES`) with a random position,
    size and colour on a noisy background. Classes are balanced. Small images
    (8x8 to 32x32) make fast CPU tests and benchmarks.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of images.
    image_size : int, default=16
        Height and width in pixels.
    n_channels : int, default=3
        Channels (colour is drawn per channel).
    n_classes : int, default=10
        Number of classes, at most 10 (the first ``n_classes`` shapes).
    noise : float, default=0.1
        Standard deviation of the Gaussian pixel noise.
    n_distractors : int, default=0
        Short random strokes drawn over each image (smaller than the shapes,
        random orientation and colour), which make the task harder.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible data.

    Returns
    -------
    X : ndarray of shape (n_samples, n_channels, image_size, image_size)
        Float32 images with values in [0, 1].
    y : ndarray of shape (n_samples,)
        Int64 labels in ``range(n_classes)``.

    Examples
    --------
    >>> X, y = make_shapes(20, image_size=8, random_state=0)
    >>> X.shape, y[:5]
    ((20, 3, 8, 8), array([0, 1, 2, 3, 4]))
    """
    if not 2 <= n_classes <= len(SHAPE_NAMES):
        raise ValueError(f"n_classes must be between 2 and 10; got {n_classes}.")
    if image_size < 4:
        raise ValueError(f"image_size must be at least 4; got {image_size}.")
    rng = check_random_state(random_state)
    y = np.arange(n_samples) % n_classes
    grid = (np.arange(image_size) + 0.5) / image_size * 2 - 1
    gy, gx = np.meshgrid(grid, grid, indexing="ij")
    # strokes at least ~1 pixel wide whatever the image size
    thickness = max(0.15, 2.0 / image_size)
    X = np.empty((n_samples, n_channels, image_size, image_size), dtype=np.float32)
    for i, label in enumerate(y):
        scale = rng.uniform(0.45, 0.75)
        cx, cy = rng.uniform(-0.2, 0.2, size=2)
        u, v = (gx - cx) / scale, (gy - cy) / scale
        mask = np.clip(1.0 - _distance(label, u, v) * scale / thickness, 0.0, 1.0)
        colour = rng.uniform(0.5, 1.0, size=n_channels)
        background = rng.uniform(0.0, 0.3, size=n_channels)
        img = background[:, None, None] + (colour - background)[:, None, None] * mask
        for _ in range(n_distractors):
            img = _draw_stroke(img, gx, gy, thickness, rng)
        img += rng.normal(0.0, noise, size=img.shape)
        X[i] = np.clip(img, 0.0, 1.0)
    return X, y.astype(np.int64)


def load_digits_images(image_size=32):
    """Load scikit-learn's bundled 8x8 digits, upscaled to ``image_size`` pixels.

    Pixel values are scaled to [0, 1] and the images resized with bilinear
    interpolation, giving CIFAR-sized single-channel inputs with no download.

    Parameters
    ----------
    image_size : int, default=32
        Output height and width.

    Returns
    -------
    X : ndarray of shape (1797, 1, image_size, image_size)
        Float32 images with values in [0, 1].
    y : ndarray of shape (1797,)
        Int64 digit labels.
    """
    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]
    X = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return X.clamp(0.0, 1.0).numpy(), digits.target.astype(np.int64)
