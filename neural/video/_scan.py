"""Scanning-mode conversion of ultrasound frames: linear (rectangular) <-> sector (fan).

A linear-array probe gives a rectangular image: rows are depth, columns are
lateral position. A convex (curved) probe gives a *sector*: rows of the
rectangular image become arcs of radius ``r`` around an apex, columns become
rays at angle ``theta`` in ``[-angle/2, angle/2]`` (measured from the downward
vertical). Both directions are written as *inverse* mappings sampled with
:func:`torch.nn.functional.grid_sample` (bilinear for images, nearest for
masks), so the output has no holes; pixels of a sector image outside the fan
are exactly zero.
"""

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_scalar
from sklearn.utils._param_validation import StrOptions
from torch.nn import functional as F

from .._utils import check_option, to_numpy
from .._validation import Finite, TupleOf, validate_params

__all__ = [
    "FanGeometry",
    "ScanModeConverter",
    "detect_scan_mode",
    "fan_geometry",
    "fan_mask",
    "linear_to_sector",
    "sector_to_linear",
]


@dataclass(frozen=True)
class FanGeometry:
    """Where the fan lies on a sector canvas, in pixels.

    Parameters
    ----------
    apex : tuple of float
        (row, column) of the apex (the fan's centre); the row may be negative
        (above the canvas).
    r_in : float
        Inner radius (the probe surface).
    r_out : float
        Outer radius (the maximal depth).
    angle : float
        Total fan angle in degrees.
    """

    apex: tuple
    r_in: float
    r_out: float
    angle: float


def fan_geometry(shape, *, angle=60.0, inner_radius=0.2, apex=None, outer_radius=None):
    """Geometry of the fan on a sector canvas of ``shape`` = (H, W).

    With ``apex`` and ``outer_radius`` left to None the fan is the largest
    one with its apex on the vertical centre line that fits the canvas: its
    top (the inner arc's ends or centre) touches row 0 and its bottom or its
    sides touch the canvas border.

    Parameters
    ----------
    shape : tuple of int
        (H, W) of the sector canvas.
    angle : float, default=60.0
        Total fan angle in degrees, in (0, 180].
    inner_radius : float, default=0.2
        Inner radius as a fraction of the outer radius, in [0, 1).
    apex : tuple of float or None, default=None
        (row, column) of the apex in pixels.
    outer_radius : float or None, default=None
        Outer radius in pixels.

    Returns
    -------
    geometry : FanGeometry
        Apex, radii and angle in pixels / degrees.
    """
    H, W = int(shape[0]), int(shape[1])
    for name, value in (("angle", angle), ("inner_radius", inner_radius),
                        ("outer_radius", outer_radius), *zip(("apex[0]", "apex[1]"), apex or ())):
        if isinstance(value, numbers.Real) and not math.isfinite(value):
            raise ValueError(f"{name} must be finite; got {value!r}.")
    check_scalar(angle, "angle", numbers.Real, min_val=0, max_val=180,
                 include_boundaries="right")
    check_scalar(inner_radius, "inner_radius", numbers.Real, min_val=0, max_val=1,
                 include_boundaries="left")
    half = math.radians(angle) / 2
    if outer_radius is None:
        # vertical extent r_out * (1 - k cos(half)), horizontal 2 r_out sin(half)
        outer_radius = min((H - 1) / (1 - inner_radius * math.cos(half)),
                           (W - 1) / (2 * math.sin(half)))
    check_scalar(outer_radius, "outer_radius", numbers.Real, min_val=0,
                 include_boundaries="neither")
    r_in = inner_radius * outer_radius
    if apex is None:
        apex = (-r_in * math.cos(half), (W - 1) / 2)
    if len(apex) != 2:
        raise ValueError(f"apex must be a (row, column) pair; got {apex!r}.")
    return FanGeometry((float(apex[0]), float(apex[1])), float(r_in), float(outer_radius),
                       float(angle))


def _as_batch(images):
    """(n, C, H, W) float tensor from (H, W), (n, H, W) or (n, C, H, W) input."""
    a = to_numpy(images)
    is_tensor = isinstance(images, torch.Tensor)
    x = images.detach() if is_tensor else torch.from_numpy(np.asarray(a, dtype=np.float32).copy())
    ndim = x.ndim
    if ndim not in (2, 3, 4):
        raise ValueError(
            "frames must have shape (H, W), (n, H, W) or (n, C, H, W); "
            f"got an array of shape {tuple(x.shape)}."
        )
    x = x.float()
    if not torch.isfinite(x).all():
        raise ValueError("frames contain NaN or infinity.")
    if ndim == 2:
        x = x[None, None]
    elif ndim == 3:
        x = x[:, None]
    return x, ndim, is_tensor


def _restore(out, ndim, is_tensor, dtype):
    if ndim == 2:
        out = out[0, 0]
    elif ndim == 3:
        out = out[:, 0]
    if is_tensor:
        return out
    out = out.numpy()
    return out.astype(dtype) if dtype is not None else out


def _polar_grid(H, W, geom, device):
    """Sampling grid (into the linear image) and fan mask for a sector canvas."""
    rows = torch.arange(H, dtype=torch.float64, device=device)[:, None]
    cols = torch.arange(W, dtype=torch.float64, device=device)[None, :]
    dy, dx = rows - geom.apex[0], cols - geom.apex[1]
    r = torch.sqrt(dx**2 + dy**2)
    theta = torch.atan2(dx, dy)  # from the downward vertical, positive to the right
    half = math.radians(geom.angle) / 2
    gx = theta / half
    gy = 2 * (r - geom.r_in) / (geom.r_out - geom.r_in) - 1
    inside = (gx.abs() <= 1) & (gy.abs() <= 1)
    grid = torch.stack(torch.broadcast_tensors(gx, gy), -1).float()
    return grid, inside


def fan_mask(shape, **geometry):
    """Boolean (H, W) map of the pixels inside the fan of a sector canvas.

    Parameters
    ----------
    shape : tuple of int
        (H, W) of the sector canvas.
    **geometry : dict
        ``angle``, ``inner_radius``, ``apex``, ``outer_radius`` as in
        :func:`fan_geometry`.

    Returns
    -------
    mask : ndarray of bool, shape (H, W)
        True inside the fan.
    """
    geom = fan_geometry(shape, **geometry)
    return _polar_grid(int(shape[0]), int(shape[1]), geom, "cpu")[1].numpy()


def _mode(interpolation, images):
    if interpolation == "auto":
        a = to_numpy(images)
        kind = np.asarray(a).dtype.kind if not isinstance(a, torch.Tensor) else "f"
        return "nearest" if kind in "biu" else "bilinear"
    check_option("interpolation", interpolation, ("auto", "bilinear", "nearest"))
    return interpolation


def linear_to_sector(images, *, out_shape=None, angle=60.0, inner_radius=0.2, apex=None,
                     outer_radius=None, interpolation="auto"):
    """Warp linear (rectangular) frames to a sector (fan) image.

    Row ``i`` of an ``H_in``-row input goes to the arc of radius
    ``r_in + i / (H_in - 1) * (r_out - r_in)``; column ``j`` of a ``W_in``-column
    input to the ray at angle ``-angle/2 + j / (W_in - 1) * angle``. Each
    output pixel is sampled from the input at its own (radius, angle); pixels
    outside the fan are 0.

    Parameters
    ----------
    images : array-like or torch.Tensor of shape (H, W), (n, H, W) or (n, C, H, W)
        Linear frames. Integer or boolean arrays (masks) keep their dtype.
    out_shape : tuple of int or None, default=None
        (H, W) of the sector canvas (default: the input's).
    angle : float, default=60.0
        Total fan angle in degrees.
    inner_radius : float, default=0.2
        Inner radius as a fraction of the outer radius.
    apex : tuple of float or None, default=None
        (row, column) of the apex; None centres the fan.
    outer_radius : float or None, default=None
        Outer radius in pixels; None fits the fan to the canvas.
    interpolation : {"auto", "bilinear", "nearest"}, default="auto"
        "auto": nearest for integer / boolean input (masks), else bilinear.

    Returns
    -------
    sector : ndarray or torch.Tensor, same dimensions as ``images``
        The sector frames (0 outside the fan).
    """
    mode = _mode(interpolation, images)
    x, ndim, is_tensor = _as_batch(images)
    dtype = None if is_tensor else np.asarray(to_numpy(images)).dtype
    H, W = out_shape if out_shape is not None else x.shape[-2:]
    geom = fan_geometry((H, W), angle=angle, inner_radius=inner_radius, apex=apex,
                        outer_radius=outer_radius)
    grid, inside = _polar_grid(int(H), int(W), geom, x.device)
    grid = grid.to(x.device).expand(x.shape[0], -1, -1, -1)
    out = F.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=True)
    out = out * inside.to(out.dtype)
    return _restore(out, ndim, is_tensor, dtype)


def sector_to_linear(images, *, out_shape=None, angle=60.0, inner_radius=0.2, apex=None,
                     outer_radius=None, interpolation="auto"):
    """Unwarp sector (fan) frames to linear (rectangular) frames.

    The inverse of :func:`linear_to_sector` with the same geometry
    (``angle`` etc. describe the fan on the *input* canvas): output row ``i``
    samples the arc of radius ``r_in + i / (H_out - 1) * (r_out - r_in)``,
    output column ``j`` the ray at angle ``-angle/2 + j / (W_out - 1) * angle``.

    Parameters
    ----------
    images : array-like or torch.Tensor of shape (H, W), (n, H, W) or (n, C, H, W)
        Sector frames.
    out_shape : tuple of int or None, default=None
        (H, W) of the linear output (default: the input's).
    angle : float, default=60.0
        Total fan angle in degrees.
    inner_radius : float, default=0.2
        Inner radius as a fraction of the outer radius.
    apex : tuple of float or None, default=None
        (row, column) of the apex; None centres the fan.
    outer_radius : float or None, default=None
        Outer radius in pixels; None fits the fan to the canvas.
    interpolation : {"auto", "bilinear", "nearest"}, default="auto"
        "auto": nearest for integer / boolean input (masks), else bilinear.

    Returns
    -------
    linear : ndarray or torch.Tensor, same dimensions as ``images``
        The linear frames.
    """
    mode = _mode(interpolation, images)
    x, ndim, is_tensor = _as_batch(images)
    dtype = None if is_tensor else np.asarray(to_numpy(images)).dtype
    Hs, Ws = x.shape[-2:]
    H, W = out_shape if out_shape is not None else (Hs, Ws)
    geom = fan_geometry((Hs, Ws), angle=angle, inner_radius=inner_radius, apex=apex,
                        outer_radius=outer_radius)
    half = math.radians(geom.angle) / 2
    r = geom.r_in + torch.linspace(0, 1, int(H), dtype=torch.float64)[:, None] * (
        geom.r_out - geom.r_in)
    theta = torch.linspace(-half, half, int(W), dtype=torch.float64)[None, :]
    y = geom.apex[0] + r * torch.cos(theta)
    xx = geom.apex[1] + r * torch.sin(theta)
    grid = torch.stack([2 * xx / max(Ws - 1, 1) - 1, 2 * y / max(Hs - 1, 1) - 1], -1).float()
    grid = grid.to(x.device).expand(x.shape[0], -1, -1, -1)
    out = F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=True)
    return _restore(out, ndim, is_tensor, dtype)


def detect_scan_mode(frames, *, tol=1e-6):
    """Guess whether frames are linear or sector scans from their blank corners.

    A sector image is exactly 0 in its two top corners (outside the fan); a
    linear one is not.

    Parameters
    ----------
    frames : array-like of shape (..., H, W)
        One frame, or several frames of one video (all are looked at).
    tol : float, default=1e-6
        Largest absolute value that counts as blank.

    Returns
    -------
    mode : {"linear", "sector"}
        The guessed scanning mode.
    """
    a = np.asarray(to_numpy(frames), dtype=np.float64)
    if a.ndim < 2:
        raise ValueError(f"frames must have at least 2 dimensions (H, W); got shape {a.shape}.")
    H, W = a.shape[-2:]
    h, w = max(1, H // 8), max(1, W // 8)
    corners = np.concatenate([a[..., :h, :w].ravel(), a[..., :h, W - w:].ravel()])
    return "sector" if np.all(np.abs(corners) <= tol) else "linear"


class ScanModeConverter(TransformerMixin, BaseEstimator):
    """Convert ultrasound frames between linear and sector scanning modes.

    A stateless transformer of frames (``fit`` only checks the parameters):
    ``to="sector"`` applies :func:`linear_to_sector`, ``to="linear"``
    :func:`sector_to_linear`, ``to="opposite"`` converts each video or frame
    batch to the mode it is *not* in (detected by :func:`detect_scan_mode`),
    which is the scanning-mode augmentation of ASTR.

    Parameters
    ----------
    to : {"sector", "linear", "opposite"}, default="opposite"
        Target scanning mode.
    angle : float, default=60.0
        Total fan angle in degrees.
    inner_radius : float, default=0.2
        Inner radius as a fraction of the outer radius.
    apex : tuple of float or None, default=None
        (row, column) of the apex on the sector canvas; None centres the fan.
    outer_radius : float or None, default=None
        Outer radius in pixels; None fits the fan to the canvas.
    interpolation : {"auto", "bilinear", "nearest"}, default="auto"
        "auto": nearest for integer / boolean frames (masks), bilinear otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from neural.video import ScanModeConverter
    >>> frames = np.ones((2, 32, 32), dtype=np.float32)
    >>> fan = ScanModeConverter(to="sector").fit_transform(frames)
    >>> fan.shape, float(fan[0, 0, 0])
    ((2, 32, 32), 0.0)
    """

    _parameter_constraints = {
        "to": [StrOptions({"sector", "linear", "opposite"})],
        "angle": [Finite(numbers.Real, 0, 180, closed="right")],
        "inner_radius": [Finite(numbers.Real, 0, 1, closed="left")],
        "apex": [None, TupleOf(Finite(numbers.Real, None, None, closed="neither"), lengths=(2,))],
        "outer_radius": [None, Finite(numbers.Real, 0, None, closed="neither")],
        "interpolation": [StrOptions({"auto", "bilinear", "nearest"})],
    }

    def __init__(self, to="opposite", *, angle=60.0, inner_radius=0.2, apex=None,
                 outer_radius=None, interpolation="auto"):
        self.to = to
        self.angle = angle
        self.inner_radius = inner_radius
        self.apex = apex
        self.outer_radius = outer_radius
        self.interpolation = interpolation

    def _geometry(self):
        return dict(angle=self.angle, inner_radius=self.inner_radius, apex=self.apex,
                    outer_radius=self.outer_radius)

    def fit(self, X, y=None):
        """Check the parameters (nothing is learned).

        Parameters
        ----------
        X : array-like of shape (n, H, W) or (n, C, H, W)
            Frames.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The converter.
        """
        validate_params(self)
        fan_geometry((8, 8), **self._geometry())
        return self

    def transform(self, X):
        """Convert the frames.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (H, W), (n, H, W) or (n, C, H, W)
            Frames of one scanning mode.

        Returns
        -------
        X_new : ndarray or torch.Tensor of the same shape
            The converted frames.
        """
        self.fit(X)
        to = self.to
        if to == "opposite":
            to = "linear" if detect_scan_mode(X) == "sector" else "sector"
        fn = linear_to_sector if to == "sector" else sector_to_linear
        return fn(X, interpolation=self.interpolation, **self._geometry())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags
