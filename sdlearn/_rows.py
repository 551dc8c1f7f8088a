"""Arrays with one row per sample, in memory or as row-chunked dask arrays on a cluster.

The solvers are written once. Arrays whose first axis runs over the samples ("row arrays":
labels, weights, covariates, scores, codes, the thin products ``X @ V``) are either arrays of
the problem's namespace or, when ``X`` is a dask array, dask arrays chunked like the rows of
``X``, whose chunks stay on the workers. Element-wise and row-local arithmetic works on both
through the namespace (dask implements NumPy's protocols and stays lazy). What differs is when
a value reaches the caller, and these helpers make that explicit:

* :func:`hosts` / :func:`floats` bring small results (sums over the samples, ``A.T @ B`` of two
  row arrays) to the caller, several at once in one pass of the scheduler: one round trip
  instead of one per value;
* :func:`keep` persists a row array that will be read again, so that its graph is computed
  once on the workers and not again by every later reduction;
* :func:`row_map` runs a function written for in-memory arrays on every row chunk (one task per
  chunk) for row-local work: the logistic loss of the scores, least squares codes, coding.

On in-memory arrays every helper is the identity (or calls the function once on the whole
arrays), so the in-memory path computes exactly what it computed before.
"""

import numpy as np


def is_dask(a):
    """Whether ``a`` is a dask collection (without importing dask)."""
    return type(a).__module__.startswith("dask") and hasattr(a, "__dask_graph__")


def _has_dask(v):
    """Whether ``v`` is a dask collection or a tuple / list holding one."""
    return is_dask(v) or (isinstance(v, (tuple, list)) and any(_has_dask(u) for u in v))


def _any_dask(values):
    return any(_has_dask(v) for v in values)


def keep(a):
    """Persist a dask array on the workers (the scheduler's memory); other values pass through.

    Call it on a row array that is stored and read again (a basis, codes, scores): a lazy
    array would recompute its whole graph, passes over ``X`` included, at every later use.
    With ``dask.distributed`` the call returns at once (the work proceeds on the cluster).
    """
    return a.persist() if is_dask(a) else a


def hosts(*values):
    """The values as in-memory arrays (NumPy for dask arrays), computed in one pass.

    Values that are not dask collections (arrays of the namespace, floats, ``None``) are
    returned as they are; all dask values (also inside tuples and lists) are computed together
    by the active scheduler.
    """
    if not _any_dask(values):
        return values
    import dask

    positions = [i for i, v in enumerate(values) if _has_dask(v)]
    computed = dask.compute(*(values[i] for i in positions))
    out = list(values)
    for i, value in zip(positions, computed):
        out[i] = value
    return tuple(out)


def floats(*values):
    """Scalars (0-d arrays, dask scalars, numbers) as Python floats, dask ones computed in one
    pass."""
    return tuple(float(v) for v in hosts(*values))


def scalar_sum(a, xp):
    """``sum(a)``: a Python float, or a lazy dask scalar for a dask ``a`` (see :func:`floats`)."""
    return xp.sum(a) if is_dask(a) else float(xp.sum(a))


def row_sums(terms, xp):
    """Sums over the samples, named: ``terms`` maps a name to ``("sum", a)`` (``sum(a)``),
    ``("dot", a, b)`` (``sum(a * b)``) or ``("gram", a, b)`` (``a.T @ b``); a term whose arrays
    are ``None`` is ``0.0`` (``None`` for 'gram'). Returns the values by name: floats for 'sum'
    and 'dot', host arrays for 'gram'.

    In memory each term is the expression above. On dask rows every term is computed in one
    task per row chunk and one tree reduction (one round trip, a handful of tasks per chunk
    instead of a graph per term).
    """
    live = {name: term for name, term in terms.items() if all(a is not None for a in term[1:])}
    distributed = {name: term for name, term in live.items() if any(is_dask(a) for a in term[1:])}
    values = {}
    if distributed:
        from ._dask import fused_sums

        values = fused_sums(distributed)
    for name, (op, a, *rest) in live.items():
        if name in distributed:
            continue
        if op == "sum":
            values[name] = float(xp.sum(a))
        elif op == "dot":
            values[name] = float(xp.sum(a * rest[0]))
        else:
            values[name] = a.T @ rest[0]
    return {name: values.get(name, None if term[0] == "gram" else 0.0) for name, term in terms.items()}


def host(value):
    """One value as an in-memory array (see :func:`hosts`)."""
    return hosts(value)[0]


def row_map(fn, *arrays, ncols=None, dtype=np.float64, **constants):
    """``fn(*arrays, **constants)``, on dask row arrays chunk by chunk.

    ``fn`` must be row-local: row ``i`` of its result depends only on row ``i`` of each array.
    It returns an array with one row per input row: 1-D when ``ncols`` is ``None``, otherwise
    with ``ncols`` columns. ``constants`` (small host arrays, numbers) are passed to every call.
    """
    if not _any_dask(arrays):
        return fn(*arrays, **constants)
    from ._dask import map_rows

    return map_rows(fn, *arrays, ncols=ncols, dtype=dtype, **constants)


def clip_nonnegative(a, xp):
    """``max(a, 0)`` element-wise (``xp.clip`` for in-memory arrays; dask's own clip)."""
    return a.clip(0.0, None) if is_dask(a) else xp.clip(a, 0.0, None)
