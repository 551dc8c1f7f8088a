"""Reading image, mask and frame files (PNG, JPEG, BMP, TIFF via Pillow, or ``.npy``)."""

import os

import numpy as np

__all__ = ["IMAGE_EXT", "read_image", "read_frame", "list_files", "check_folder"]

IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".npy")


def check_folder(folder, name):
    """Raise a ``ValueError`` naming ``name`` unless ``folder`` is a folder."""
    if not os.path.isdir(folder):
        raise ValueError(f"{name}={os.fspath(folder)!r} is not a folder.")


def list_files(folder):
    """Image files of ``folder`` by stem (file name without extension), sorted."""
    files = {}
    for f in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(f)
        if ext.lower() in IMAGE_EXT:
            files[stem] = os.path.join(folder, f)
    return files


def read_image(path, *, mask=False, size=None):
    """An image (as stored: (H, W), (H, W, C) or (C, H, W)) or a single-channel mask.

    Masks must be single-channel (grayscale / palette PNG or ``.npy``); images
    are read as gray or RGB and resized bilinearly (masks: nearest) to
    ``size`` x ``size`` when given (``.npy`` files are never resized).
    """
    if path.lower().endswith(".npy"):
        arr = np.load(path, allow_pickle=False)
        if size is not None and arr.shape[:2] != (size, size) and arr.shape[-2:] != (size, size):
            raise ValueError(f"{path}: .npy files are not resized; got shape {arr.shape}, "
                             f"image_size={size}.")
        return arr
    from PIL import Image

    with Image.open(path) as im:
        if mask:
            if im.mode not in ("L", "P", "I", "I;16", "1"):
                raise ValueError(
                    f"{path}: mask has mode {im.mode!r}; masks must be single-channel images "
                    "holding class indices (grayscale or palette PNG) or .npy arrays."
                )
        else:
            im = im.convert("RGB") if im.mode not in ("L", "RGB") else im
        if size is not None and im.size != (size, size):
            im = im.resize((size, size), Image.NEAREST if mask else Image.BILINEAR)
        return np.asarray(im)


def read_frame(path, *, mask=False):
    """A 2-D gray video frame (or mask) from an image or ``.npy`` file."""
    if path.lower().endswith(".npy"):
        a = np.load(path, allow_pickle=False)
    else:
        from PIL import Image

        with Image.open(path) as im:
            a = np.asarray(im.convert("L"))
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[-1] in (1, 3, 4):  # (H, W, C) -> gray
        a = a[..., :3].mean(-1) if not mask else a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D frame (H, W); got shape {a.shape}.")
    return a
