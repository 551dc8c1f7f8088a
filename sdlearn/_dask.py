"""Dask's machinery for row arrays: blockwise maps over row chunks and tree-reduced sums.

Only imported when the data is a dask array. Every operation here is a ``dask.array`` graph
(``blockwise`` over the row chunks, ``sum`` along the stacked chunk axis, which dask reduces
in a tree) run by whatever scheduler is active: the threaded one, or a ``dask.distributed``
cluster. Kernels are module-level functions, so the workers import them by name.
"""

import math

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp

from ._rows import host

_INNER = "abcdefghjklmnopqrstuvwxy"  # index letters of the non-row axes of the inputs ('i' is the rows)
_OUTER = "ABCDEFGH"  # index letters of the axes of a reduced result


def is_sparse_chunked(X):
    """Whether the chunks of ``X`` are SciPy sparse matrices."""
    return sp.issparse(getattr(X, "_meta", None))


def _arguments(arrays):
    """``blockwise`` arguments: every array indexed by 'i' (rows) and its own letters."""
    args, used = [], 0
    for a in arrays:
        letters = _INNER[used:used + a.ndim - 1]
        used += a.ndim - 1
        args += [a, "i" + letters]
    return args


def map_rows(fn, *arrays, ncols=None, dtype=np.float64, **constants):
    """Lazy ``fn`` on every row chunk of aligned row arrays (one task per chunk).

    Returns a dask array with the rows of the inputs: 1-D when ``ncols`` is ``None``, else with
    ``ncols`` columns in one chunk.
    """
    out = "i" if ncols is None else "iz"
    new_axes = {} if ncols is None else {"z": ncols}
    meta = np.empty((0,) * len(out), dtype=dtype)
    return da.blockwise(_Cast(fn, dtype), out, *_arguments(arrays), new_axes=new_axes, dtype=dtype,
                        concatenate=True, meta=meta, **constants)


class _Cast:
    """``fn`` with its result converted to ``dtype`` (the dtype the graph declares)."""

    def __init__(self, fn, dtype):
        self.fn, self.dtype = fn, np.dtype(dtype)
        self.__name__ = getattr(fn, "__name__", "kernel")

    def __call__(self, *blocks, **constants):
        return np.asarray(self.fn(*blocks, **constants), dtype=self.dtype)


class _stacked:
    """``fn``'s result for one chunk as a block of shape ``(1, *shape)`` (stacked along the
    chunk axis, which the reduction then sums)."""

    def __init__(self, fn, shape, dtype):
        self.fn, self.shape, self.dtype = fn, shape, np.dtype(dtype)
        self.__name__ = getattr(fn, "__name__", "kernel")

    def __call__(self, *blocks, **constants):
        return np.asarray(self.fn(*blocks, **constants), dtype=self.dtype).reshape((1,) + self.shape)


def stacked_rows(fn, *arrays, shape, dtype=np.float64, **constants):
    """Lazy ``fn(*chunks, **constants)``, an array of ``shape``, for every row chunk, stacked
    along a new first axis (one entry per chunk) for a tree reduction over that axis."""
    shape = tuple(int(s) for s in shape)
    out = "i" + _OUTER[:len(shape)]
    return da.blockwise(_stacked(fn, shape, dtype), out, *_arguments(arrays), new_axes=dict(zip(_OUTER, shape)),
                        adjust_chunks={"i": 1}, dtype=dtype, concatenate=True,
                        meta=np.empty((0,) * len(out), dtype=dtype), **constants)


def sum_rows(fn, *arrays, shape, dtype=np.float64, **constants):
    """Lazy sum over the row chunks of ``fn(*chunks, **constants)``, an array of ``shape``.

    Each chunk's result is a small array; dask stacks them along a new axis and sums that axis
    in a tree (``split_every`` chunks at a time), so no process ever holds more than a few.
    """
    return stacked_rows(fn, *arrays, shape=shape, dtype=dtype, **constants).sum(axis=0)


def reduce_rows(fn, *arrays, shape, dtype=np.float64, how="sum", **constants):
    """Like :func:`sum_rows` with another tree reduction of the chunks' results ('sum', 'max'
    or 'min')."""
    stacked = stacked_rows(fn, *arrays, shape=shape, dtype=dtype, **constants)
    if how == "sum":
        return stacked.sum(axis=0)
    return stacked.max(axis=0) if how == "max" else stacked.min(axis=0)


# -- row arrays from the user's data ------------------------------------------------------------
def _known_rows(a, name):
    """``a`` with known chunk sizes (persisted first, so that sizing it computes nothing twice)."""
    if any(math.isnan(c) for c in a.chunks[0]):
        a = a.persist()
        a.compute_chunk_sizes()
    return a


def rows_of_X(X, name="X"):
    """A 2-D dask array ``X`` chunked by rows only (one chunk along the columns), with known
    chunk sizes. Chunks along the columns are merged (a rechunk); unknown sizes are computed."""
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D dask array of shape (n_samples, n_features), got {X.ndim} dimensions.")
    if any(math.isnan(c) for c in X.chunks[1]):
        raise ValueError(f"{name} has unknown column chunk sizes; call {name}.compute_chunk_sizes() first.")
    if len(X.chunks[1]) > 1:
        # the solvers multiply whole rows with thin matrices: one chunk per row block
        X = X.rechunk({1: -1})
    return _known_rows(X, name)


def align_rows(a, chunks, name):
    """``a`` (NumPy, array-like or dask; 1-D or 2-D) as a dask array chunked like ``chunks``
    along its rows (one chunk along the columns)."""
    n = int(sum(chunks))
    if isinstance(a, da.Array):
        a = _known_rows(a, name)
        if a.shape[0] != n:
            raise ValueError(f"{name} has {a.shape[0]} rows but X has {n}; they must match.")
        if a.ndim == 2 and len(a.chunks[1]) > 1:
            a = a.rechunk({1: -1})
        if tuple(a.chunks[0]) != tuple(chunks):
            a = a.rechunk({0: chunks})
        return a
    if sp.issparse(a):
        a = a.toarray()
    a = np.asarray(a)
    if a.ndim == 0 or a.shape[0] != n:
        raise ValueError(f"{name} must have one entry per row of X ({n}), got shape {a.shape}.")
    return da.from_array(a, chunks=(tuple(chunks),) + tuple((s,) for s in a.shape[1:]))


def constant_rows(chunks, k, value, dtype):
    """An ``(n, k)`` row array filled with ``value`` (``k=None``: 1-D), computed where used."""
    n = int(sum(chunks))
    if k is None:
        return da.full((n,), value, chunks=(tuple(chunks),), dtype=dtype)
    return da.full((n, k), value, chunks=(tuple(chunks), (k,)), dtype=dtype)


def standard_normal_rows(rng, chunks, k, dtype, scale=1.0):
    """``scale * rng.standard_normal((n, k))`` as a row array: the same numbers as one draw (the
    generator continues from chunk to chunk), drawn and sent to the cluster one chunk at a time,
    so the caller never holds more than one chunk of them."""
    blocks = []
    for c in chunks:
        block = np.asarray(scale * rng.standard_normal((int(c), k)), dtype=dtype)
        blocks.append(da.from_array(block, chunks=(int(c), k)).persist())
    return da.concatenate(blocks, axis=0) if blocks else constant_rows(chunks, k, 0.0, dtype)


def persist_all(*arrays):
    """Persist several dask arrays in one call (shared parts of their graphs run once)."""
    present = [a for a in arrays if a is not None]
    persisted = iter(dask.persist(*present))
    return tuple(None if a is None else next(persisted) for a in arrays)


def _as_rows_2d(a):
    return a[:, None] if a.ndim == 1 else a


def fused_sums(terms):
    """The terms of :func:`sdlearn._rows.row_sums` on dask row arrays: one blockwise task per row
    chunk evaluates all of them, one tree reduction sums the packed results, one round trip
    brings them (each distinct array is read once per chunk)."""
    arrays, index = [], {}
    for _, *operands in terms.values():
        for a in operands:
            if id(a) not in index:
                index[id(a)] = len(arrays)
                arrays.append(_as_rows_2d(a))
    chunks = arrays[0].chunks[0]
    arrays = [a if a.chunks[0] == chunks else a.rechunk({0: chunks}) for a in arrays]
    layout, size = [], 0
    for name, (op, *operands) in terms.items():
        shape = () if op in ("sum", "dot") else (operands[0].shape[-1], operands[1].shape[-1])
        layout.append((name, op, tuple(index[id(a)] for a in operands), shape, size))
        size += int(np.prod(shape)) if shape else 1
    packed = host(sum_rows(_FusedTerms(tuple(layout), size), *arrays, shape=(size,)))
    out = {}
    for name, op, _, shape, start in layout:
        if shape:
            out[name] = packed[start:start + int(np.prod(shape))].reshape(shape)
        else:
            out[name] = float(packed[start])
    return out


class _FusedTerms:
    """The per-chunk kernel of :func:`fused_sums`."""

    def __init__(self, layout, size):
        self.layout, self.size = layout, size
        self.__name__ = "row_sums"

    def __call__(self, *blocks):
        out = np.zeros(self.size)
        for _, op, operands, shape, start in self.layout:
            a = blocks[operands[0]]
            if op == "sum":
                out[start] = np.sum(a)
            elif op == "dot":
                b = blocks[operands[1]]
                out[start] = np.sum(a * b) if not sp.issparse(a) else float(a.multiply(b).sum())
            else:
                b = blocks[operands[1]]
                product = a.T @ b
                out[start:start + int(np.prod(shape))] = np.asarray(
                    product.toarray() if sp.issparse(product) else product).ravel()
        return out
