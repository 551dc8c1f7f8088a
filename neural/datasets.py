"""Data available offline, and lazy datasets of the user's own files.

Generators and loaders: synthetic shapes and scikit-learn's digits (image
classification). Lazy map-style :class:`torch.utils.data.Dataset` classes
read the user's files one item at a time, so data larger than memory can be
passed to any estimator's ``fit``: :class:`ImageFolderDataset` (classified
images), :class:`SegmentationFolderDataset` (images and masks),
:class:`VideoFolderDataset` (videos of frames and masks),
:class:`TextFolderDataset` and :class:`JSONLinesTextDataset` (labelled texts).
The in-memory folder loaders of the model packages stack these items, so a fit
on a dataset equals the fit on the loaded arrays.
"""

import json
import os

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.utils import check_random_state
from torch.nn import functional as F
from torch.utils.data import Dataset

from ._files import IMAGE_EXT, check_folder, list_files, read_frame, read_image

__all__ = [
    "SHAPE_NAMES",
    "make_shapes",
    "load_digits_images",
    "ImageFolderDataset",
    "SegmentationFolderDataset",
    "VideoFolderDataset",
    "TextFolderDataset",
    "JSONLinesTextDataset",
]

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


# ------------------------------------------------------------------ lazy folder datasets
def _image_to_chw(img):
    """An image array as float32 (C, H, W); 8-bit images scaled to [0, 1]."""
    img = np.asarray(img)
    scale = 255.0 if img.dtype == np.uint8 else 1.0
    if img.ndim == 2:
        img = img[None]
    elif img.ndim == 3 and img.shape[-1] in (1, 3, 4) and img.shape[0] not in (1, 3, 4):
        img = img.transpose(2, 0, 1)
    return img.astype(np.float32) / scale


class ImageFolderDataset(Dataset):
    """Labelled images in one sub-folder per class, read one at a time.

    Layout ``root/<class name>/<image>`` (PNG, JPEG, BMP, TIFF or ``.npy``).
    Item ``i`` is ``(image, label)``: a float32 array (C, H, W), 8-bit images
    scaled to [0, 1], and the class name. Pass it to
    ``LocalLearningClassifier.fit`` (or any image classifier of
    :mod:`neural`): the fit equals the fit on the same images in memory.

    Parameters
    ----------
    root : str or path-like
        Folder of class folders.
    image_size : int or None, default=None
        Resize images (bilinear) to ``image_size`` square; None keeps them.

    Attributes
    ----------
    classes : list of str
        Class folder names, sorted.
    targets : ndarray of str
        Label of every item (read without opening the images).
    files : list of str
        Path of every item.
    """

    def __init__(self, root, *, image_size=None):
        check_folder(root, "root")
        self.root = os.fspath(root)
        self.image_size = image_size
        self.classes = sorted(d for d in os.listdir(self.root)
                              if os.path.isdir(os.path.join(self.root, d)))
        self.files, labels = [], []
        for label in self.classes:
            for path in list_files(os.path.join(self.root, label)).values():
                self.files.append(path)
                labels.append(label)
        if not self.files:
            raise ValueError(f"root={self.root!r} holds no class folders with image files "
                             f"{IMAGE_EXT}.")
        self.targets = np.asarray(labels)

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        img = read_image(self.files[i], size=self.image_size)
        return _image_to_chw(img), self.targets[i]


class SegmentationFolderDataset(Dataset):
    """Images and their label masks, paired by file name, read one at a time.

    Item ``i`` is ``(image, mask)``: float32 (C, H, W) (8-bit scaled to
    [0, 1]) and int64 (H, W) class indices. :func:`neural.segmentation.load_segmentation_folder`
    stacks these items in memory; ``DToPSegmenter.fit`` takes the dataset itself.

    Parameters
    ----------
    image_dir : str or path-like
        Folder of images (PNG, JPEG, BMP, TIFF, or ``.npy`` arrays of shape
        (H, W), (H, W, C) or (C, H, W)).
    mask_dir : str or path-like
        Folder of masks with the same file stems: single-channel images of
        class indices (grayscale or palette PNG) or ``.npy`` integer arrays.
    image_size : int or None, default=None
        Resize images (bilinear) and masks (nearest) to ``image_size`` square.

    Attributes
    ----------
    stems : list of str
        File stems of the items, sorted.
    """

    def __init__(self, image_dir, mask_dir, *, image_size=None):
        check_folder(image_dir, "image_dir")
        check_folder(mask_dir, "mask_dir")
        self.image_size = image_size
        images, masks = list_files(image_dir), list_files(mask_dir)
        if not images:
            raise ValueError(f"image_dir={os.fspath(image_dir)!r} holds no image files "
                             f"{IMAGE_EXT}.")
        missing = sorted(set(images) - set(masks))
        if missing:
            raise ValueError(f"{len(missing)} images have no mask of the same name in mask_dir, "
                             f"e.g. {missing[:3]}.")
        self.stems = list(images)
        self._pairs = [(images[s], masks[s]) for s in self.stems]

    def __len__(self):
        return len(self._pairs)

    def __getitem__(self, i):
        image_path, mask_path = self._pairs[i]
        img = _image_to_chw(read_image(image_path, size=self.image_size))
        m = np.asarray(read_image(mask_path, mask=True, size=self.image_size))
        if m.ndim != 2:
            raise ValueError(f"{mask_path}: mask must be 2-D (H, W); got shape {m.shape}.")
        if m.shape != img.shape[1:]:
            raise ValueError(f"{self.stems[i]}: image of size {img.shape[1:]} but mask of size "
                             f"{m.shape}.")
        return img, m.astype(np.int64)


class VideoFolderDataset(Dataset):
    """Videos stored as folders of frames with masks, read one video at a time.

    Layout: one sub-folder per video under ``path``, each holding
    ``frames_dir/`` and ``masks_dir/`` with the same file names (frames in
    sorted file-name order). Item ``i`` is ``(frames, masks)``: float32
    (n_frames, H, W) gray frames (8-bit scaled to [0, 1]) and uint8 binary
    masks. :func:`neural.video.load_ultrasound_folder` lists these items in
    memory; ``ASTRSegmenter.fit`` takes the dataset itself.

    Parameters
    ----------
    path : str or path-like
        Folder of video folders.
    frames_dir, masks_dir : str, default="frames", "masks"
        Names of the sub-folders of every video folder.

    Attributes
    ----------
    names : list of str
        Video folder names, sorted.
    """

    def __init__(self, path, *, frames_dir="frames", masks_dir="masks"):
        check_folder(path, "path")
        self.names, self._videos = [], []
        for name in sorted(os.listdir(path)):
            vdir = os.path.join(path, name)
            if not os.path.isdir(vdir):
                continue
            fdir, mdir = os.path.join(vdir, frames_dir), os.path.join(vdir, masks_dir)
            if not (os.path.isdir(fdir) and os.path.isdir(mdir)):
                raise ValueError(f"video folder {vdir!r} must hold '{frames_dir}/' and "
                                 f"'{masks_dir}/' sub-folders.")
            frames, masks = list_files(fdir), list_files(mdir)
            if not frames:
                raise ValueError(f"{fdir!r} holds no frame files {IMAGE_EXT}.")
            missing = [os.path.basename(f) for s, f in frames.items() if s not in masks]
            if missing:
                raise ValueError(f"{len(missing)} frames of {name!r} have no mask of the same "
                                 f"name in {mdir!r}, e.g. {missing[:3]}.")
            self.names.append(name)
            self._videos.append([(f, masks[s]) for s, f in frames.items()])
        if not self._videos:
            raise ValueError(f"path={os.fspath(path)!r} holds no video folders.")

    def __len__(self):
        return len(self._videos)

    def __getitem__(self, i):
        frames, masks = [], []
        for frame_path, mask_path in self._videos[i]:
            img = read_frame(frame_path)
            m = read_frame(mask_path, mask=True)
            if img.shape != m.shape:
                raise ValueError(f"{frame_path}: frame of size {img.shape} but mask of size "
                                 f"{m.shape}.")
            scale = 255.0 if img.dtype == np.uint8 or img.max() > 1 else 1.0
            frames.append(img.astype(np.float32) / scale)
            masks.append((m > 0).astype(np.uint8))
        if len({f.shape for f in frames}) > 1:
            raise ValueError(f"frames of {self.names[i]!r} have different sizes "
                             f"{sorted({f.shape for f in frames})}.")
        return np.stack(frames), np.stack(masks)


class TextFolderDataset(Dataset):
    """Labelled texts, one UTF-8 file per text in one sub-folder per label, read on access.

    Layout ``root/<label>/<name>.txt``. Item ``i`` is ``(text, label)``; pass
    it to ``P2CClassifier.fit`` (with ``soft_labels`` / ``preferences``
    indexed like the items, if any).

    Parameters
    ----------
    root : str or path-like
        Folder of label folders.
    suffix : str, default=".txt"
        Extension of the text files.

    Attributes
    ----------
    classes : list of str
        Label folder names, sorted.
    targets : ndarray of str
        Label of every item.
    files : list of str
        Path of every item.
    """

    def __init__(self, root, *, suffix=".txt"):
        check_folder(root, "root")
        self.root = os.fspath(root)
        self.classes = sorted(d for d in os.listdir(self.root)
                              if os.path.isdir(os.path.join(self.root, d)))
        self.files, labels = [], []
        for label in self.classes:
            folder = os.path.join(self.root, label)
            for f in sorted(os.listdir(folder)):
                if f.endswith(suffix):
                    self.files.append(os.path.join(folder, f))
                    labels.append(label)
        if not self.files:
            raise ValueError(f"root={self.root!r} holds no label folders with {suffix} files.")
        self.targets = np.asarray(labels)

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with open(self.files[i], encoding="utf-8") as f:
            return f.read(), self.targets[i]


class JSONLinesTextDataset(Dataset):
    """``(text, label)`` items of a JSON-lines file, each line parsed when read.

    The file is scanned once for line offsets; the same records as
    :func:`neural.text.load_text_jsonl` (without annotations).

    Parameters
    ----------
    path : str or path-like
        One JSON object per line (blank lines are skipped).
    text_key : str, default="text"
        Key of the text.
    label_key : str, default="label"
        Key of the label.
    """

    def __init__(self, path, *, text_key="text", label_key="label"):
        self.path = os.fspath(path)
        self.text_key, self.label_key = text_key, label_key
        self._offsets = []
        with open(self.path, "rb") as f:
            offset = 0
            for line in f:
                if line.strip():
                    self._offsets.append(offset)
                offset += len(line)
        if not self._offsets:
            raise ValueError(f"{self.path!r} holds no records.")

    def __len__(self):
        return len(self._offsets)

    def __getitem__(self, i):
        with open(self.path, "rb") as f:
            f.seek(self._offsets[i])
            line = f.readline().decode("utf-8")
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{self.path!r} record {i} is not JSON: {exc}") from None
        if not isinstance(rec, dict) or self.text_key not in rec or self.label_key not in rec:
            raise ValueError(f"{self.path!r} record {i} lacks {self.text_key!r} or "
                             f"{self.label_key!r}.")
        return str(rec[self.text_key]), rec[self.label_key]
