"""Pure functions that lay out local learning: module splits and aux schedules.

Kept free of torch so that the worked examples of the papers can be checked
directly (see ``tests/neural/test_local_schedule.py``).
"""

import numpy as np

__all__ = [
    "split_layers",
    "auglocal_depths",
    "uniform_sample_layers",
    "infopro_loss_weights",
    "man_loss_weights",
]


def split_layers(n_layers, n_modules, strategy="even", costs=None):
    """Cut ``n_layers`` consecutive layers into ``n_modules`` contiguous modules.

    Parameters
    ----------
    n_layers : int
        Number of layers of the backbone (stem + blocks).
    n_modules : int
        Number of gradient-isolated modules K, ``1 <= K <= n_layers``.
    strategy : {"even", "layerwise", "memory"} or sequence of int, default="even"
        ``"even"``: as equal numbers of layers as possible (earlier modules get
        the extra layer). ``"layerwise"``: the first K-1 modules hold one layer
        each and the last module holds the rest (AugLocal's layout).
        ``"memory"``: contiguous split minimising the largest per-module sum
        of ``costs`` (e.g. activation sizes, which front-loads the cuts like
        the balanced-memory "InfoPro*" splits). A sequence gives the index of
        the last layer of each of the first K-1 modules, increasing.
    costs : sequence of float, default=None
        Per-layer cost, required for ``"memory"``.

    Returns
    -------
    bounds : list of tuple of int
        ``(start, stop)`` layer ranges, one per module, covering
        ``range(n_layers)`` in order.

    Raises
    ------
    ValueError
        If ``n_modules`` is outside ``[1, n_layers]`` or the strategy is invalid.

    Examples
    --------
    >>> split_layers(7, 3)
    [(0, 3), (3, 5), (5, 7)]
    >>> split_layers(7, 3, "layerwise")
    [(0, 1), (1, 2), (2, 7)]
    """
    if not 1 <= n_modules <= n_layers:
        raise ValueError(
            f"n_local_modules={n_modules} must be between 1 and the number of layers of "
            f"the backbone ({n_layers}: the stem and every residual block); use a deeper "
            "backbone or fewer modules."
        )
    if isinstance(strategy, str):
        if strategy == "even":
            sizes = [len(a) for a in np.array_split(np.arange(n_layers), n_modules)]
        elif strategy == "layerwise":
            sizes = [1] * (n_modules - 1) + [n_layers - n_modules + 1]
        elif strategy == "memory":
            if costs is None or len(costs) != n_layers:
                raise ValueError("split='memory' needs one cost per layer.")
            sizes = _min_max_partition(np.asarray(costs, dtype=float), n_modules)
        else:
            raise ValueError(
                "split must be 'auto', 'even', 'layerwise', 'memory' or a tuple of layer "
                f"indices; got {strategy!r}."
            )
        ends = np.cumsum(sizes)
    else:
        ends = [int(e) + 1 for e in strategy] + [n_layers]
        if len(ends) != n_modules:
            raise ValueError(
                f"split lists {len(ends) - 1} cut points, so it needs n_local_modules="
                f"{len(ends)}; got n_local_modules={n_modules}."
            )
        if any(b <= a for a, b in zip([0] + ends[:-1], ends)) or ends[-2:-1] >= [n_layers]:
            raise ValueError(
                f"split={tuple(strategy)} must be increasing layer indices in "
                f"[0, {n_layers - 2}]."
            )
    starts = [0] + [int(e) for e in ends[:-1]]
    return [(int(a), int(b)) for a, b in zip(starts, ends)]


def _min_max_partition(costs, k):
    """Contiguous partition of ``costs`` into ``k`` parts minimising the max sum."""
    n = len(costs)
    prefix = np.concatenate([[0.0], np.cumsum(costs)])
    best = np.full((k + 1, n + 1), np.inf)
    cut = np.zeros((k + 1, n + 1), dtype=int)
    best[0, 0] = 0.0
    for parts in range(1, k + 1):
        for end in range(parts, n + 1):
            for start in range(parts - 1, end):
                value = max(best[parts - 1, start], prefix[end] - prefix[start])
                if value < best[parts, end]:
                    best[parts, end], cut[parts, end] = value, start
    sizes, end = [], n
    for parts in range(k, 0, -1):
        start = cut[parts, end]
        sizes.append(end - start)
        end = start
    return sizes[::-1]


def auglocal_depths(n_modules, max_depth, pyramid_coeff=0.5, min_depth=1):
    """Depth of each AugLocal auxiliary network (the pyramidal schedule).

    For local module ``i = 0 .. K-2``::

        d_i = max(1, round(D * (1 - c * i / (K - 2)) + d_min * c * i / (K - 2)))

    a linear decay from ``D`` at the first module towards ``D(1-c) + c d_min``
    at the last local module (Python's ``round``, half to even, as in the
    reference code). ``pyramid_coeff=0`` gives ``D`` everywhere.

    Parameters
    ----------
    n_modules : int
        Number of modules K (the last one has no auxiliary network).
    max_depth : int
        Depth D of the first auxiliary network.
    pyramid_coeff : float, default=0.5
        How far the depth decays, c in [0, 1].
    min_depth : int, default=1
        Depth the schedule decays towards when ``c=1``.

    Returns
    -------
    depths : list of int
        ``K - 1`` depths.

    Examples
    --------
    >>> auglocal_depths(11, 5)  # ResNet-32 with D=5: K' = 16 - 5 modules
    [5, 5, 5, 4, 4, 4, 4, 3, 3, 3]
    """
    n_local = n_modules - 1
    depths = []
    for i in range(n_local):
        ratio = pyramid_coeff * i / (n_local - 1) if n_local > 1 else 0.0
        depths.append(max(1, round(max_depth * (1 - ratio) + min_depth * ratio)))
    return depths


def uniform_sample_layers(layer_index, n_layers, depth):
    """Pick the later layers an AugLocal auxiliary network imitates.

    With ``l = layer_index``, ``N = n_layers`` and ``d = depth``: all of
    ``l+1 .. N-1`` if ``d >= N-1-l``, else ``round(l + j (N-1-l) / d)`` for
    ``j = 1 .. d`` (equally spaced, always ending at the last layer N-1).

    Parameters
    ----------
    layer_index : int
        Index of the last layer of the local module.
    n_layers : int
        Number of layers of the whole network.
    depth : int
        Depth of the auxiliary network.

    Returns
    -------
    indices : list of int
        Increasing layer indices, ending with ``n_layers - 1``.

    Examples
    --------
    >>> uniform_sample_layers(0, 16, 2)  # ResNet-32, first layer, D=2
    [8, 15]
    >>> uniform_sample_layers(1, 55, 3)  # ResNet-110, second layer, D=3
    [19, 36, 54]
    """
    remaining = n_layers - 1 - layer_index
    if depth >= remaining:
        return list(range(layer_index + 1, n_layers))
    return [round(layer_index + j * remaining / depth) for j in range(1, depth + 1)]


def infopro_loss_weights(n_modules, lambdas):
    """Compute InfoPro's per-module weights of the reconstruction and task losses.

    ``lambda_k = (1 - r) * start + r * end`` with ``r = k / (K - 2)`` (0 when
    ``K <= 2``) for local modules ``k = 0 .. K-2``.

    Parameters
    ----------
    n_modules : int
        Number of modules K.
    lambdas : tuple of 4 float
        ``(recon_first, task_first, recon_last, task_last)``, the reference
        code's ``(ixx_1, ixy_1, ixx_2, ixy_2)``.

    Returns
    -------
    weights : list of tuple of float
        ``(lambda_recon, lambda_task)`` for each of the ``K - 1`` local modules.
    """
    return _interpolate([k / (n_modules - 2) if n_modules > 2 else 0.0
                         for k in range(n_modules - 1)], lambdas)


def _interpolate(ratios, lambdas):
    """``(lambda_recon, lambda_task)`` at each ratio ``r``: ``(1 - r) * first + r * last``."""
    ixx_1, ixy_1, ixx_2, ixy_2 = (float(v) for v in lambdas)
    return [(ixx_1 * (1 - r) + ixx_2 * r, ixy_1 * (1 - r) + ixy_2 * r) for r in ratios]


def man_loss_weights(next_stages, n_modules, lambdas, n_stages=3):
    """Return MAN's per-module weights of InfoPro's two loss terms, by the next block's stage.

    MAN's reference code interpolates the weights of local module ``k`` not
    by ``k`` (as InfoPro does) but by the stage ``s_k`` (1, 2, 3 for a CIFAR
    ResNet) of the block its auxiliary network imitates, the first block of
    module ``k+1``: ``lambda_k = (1 - r) * start + r * end`` with ::

        r = s_k / max(K - 2, n_stages + 1)      (0 when K <= 2)

    For ``K >= n_stages + 3`` this is the reference's ``s_k / (K - 2)``. For
    smaller ``K`` the reference's ratio reaches 1 or more, which with its
    default ``(5, 0.5, 0, 0)`` gives a module zero or negative weights (no
    training signal, or one that maximises the loss); the larger denominator
    keeps every ratio below 1.

    Parameters
    ----------
    next_stages : sequence of int
        Stage (1-based) of the first block of module ``k+1``, for each of the
        ``K - 1`` local modules.
    n_modules : int
        Number of modules K.
    lambdas : tuple of 4 float
        ``(recon_first, task_first, recon_last, task_last)``, the reference
        code's ``(ixx_1, ixy_1, ixx_2, ixy_2)``.
    n_stages : int, default=3
        Number of stages of the backbone.

    Returns
    -------
    weights : list of tuple of float
        ``(lambda_recon, lambda_task)`` for each local module.

    Examples
    --------
    >>> man_loss_weights([1, 1, 2, 2, 2, 3, 3], 8, (5, 0.5, 0, 0))[0]  # r = 1/6
    (4.166666666666667, 0.4166666666666667)
    """
    denominator = max(n_modules - 2, n_stages + 1)
    return _interpolate([stage / denominator if n_modules > 2 else 0.0 for stage in next_stages],
                        lambdas)
