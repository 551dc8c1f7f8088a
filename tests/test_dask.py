"""SDL on a dask.distributed cluster: a LocalCluster of two worker processes.

The fits on row-chunked dask arrays must equal the in-memory fits on the same data (the same
algorithm, rounding aside), with uneven chunks, a single-row chunk and a worker whose rows are
all of one class; predictions are lazy dask arrays; and the client never receives the rows of
X, which is checked on what the client gathers and on what the workers sent out (their
transfer logs), not on a counter of our own.
"""

import contextlib
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from sdlearn import SDLClassifier, bcd, fit_stream, lpgd  # noqa: E402
from sdlearn.datasets import make_sdl_classification  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]  # the checkout the workers must import sdlearn from

# one cluster for the module: with `pytest -n 2` (`--dist loadgroup`, see pyproject.toml) all these
# tests run in the same xdist worker; fits stop after a few iterations (the iterates themselves
# must agree), as every iteration is several round trips to a cluster on a loaded 2-core machine
pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.xdist_group("dask-cluster"),
]


@pytest.fixture(scope="module")
def client():
    """Two worker processes (one thread each) on this machine; closed after the module."""
    old = os.environ.get("PYTHONPATH")
    # worker processes import sdlearn by name: from this checkout, whatever else is installed
    os.environ["PYTHONPATH"] = str(ROOT) + ("" if not old else os.pathsep + old)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # port / memory notices of a fresh cluster
            cluster = distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, memory_limit="1GiB", dashboard_address=None,
                silence_logs=40,
            )
        with cluster, distributed.Client(cluster, timeout=60) as c:
            c.wait_for_workers(2, timeout=120)
            yield c
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def rows_on_workers(client, A, sizes, workers=None, sparse=False):
    """``A`` as a dask array with row chunks ``sizes``, chunk ``k`` persisted on worker
    ``workers[k]`` (round robin over the workers by default)."""
    addresses = sorted(client.scheduler_info()["workers"])
    workers = workers or [k % len(addresses) for k in range(len(sizes))]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    blocks = []
    for k, (start, stop) in enumerate(zip(starts[:-1], starts[1:])):
        block = A[start:stop]
        block = sp.csr_matrix(block) if sparse else block
        lazy = da.from_array(block, chunks=block.shape, asarray=False)
        blocks.append(client.persist(lazy, workers=[addresses[workers[k]]]))
    return da.concatenate(blocks, axis=0)


@pytest.fixture(scope="module")
def data():
    d = make_sdl_classification(301, 12, 2, n_aux=1, n_classes=3, mode="filter", class_sep=2.0, random_state=0)
    order = np.argsort(d.target != 0, kind="stable")  # class 0 first: the first chunk holds one class only
    n0 = int(np.sum(d.target == 0))
    return d.data[order], d.target[order], d.aux[order], n0


def chunk_sizes(n, n0):
    """Uneven row chunks: the first holds only class-0 rows, one chunk has a single row."""
    first = min(n0, 60)
    rest = n - first - 1
    return [first, 1, rest // 3, rest - rest // 3]


SETTINGS = {
    "lpgd": dict(max_iter=4, tol=1e-9),
    "bcd": dict(max_iter=2, block_max_iter=2),  # BCD makes many round trips per sweep: a few sweeps
}


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("solver", ["lpgd", "bcd"])
@pytest.mark.parametrize("mode", ["filter", "feature"])
def test_fit_on_the_cluster_equals_the_in_memory_fit(client, data, mode, solver, sparse):
    X, y, A, n0 = data
    sizes = chunk_sizes(len(y), n0)
    kw = dict(n_components=2, mode=mode, solver=solver, xi=0.5, random_state=0, **SETTINGS[solver])
    reference = SDLClassifier(**kw).fit(sp.csr_matrix(X) if sparse else X, y, X_aux=A)
    # the first chunk (one class only) alone on the first worker, the rest on the second
    X_dask = rows_on_workers(client, X, sizes, workers=[0, 1, 1, 1], sparse=sparse)
    fitted = SDLClassifier(**kw).fit(X_dask, da.from_array(y, chunks=57), X_aux=A)
    f_ref, f = reference.history_["objective"][-1], fitted.history_["objective"][-1]
    assert abs(f - f_ref) <= 1e-8 * abs(f_ref)
    assert fitted.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(fitted.components_, reference.components_, atol=1e-6)
    predicted = fitted.predict(X_dask, X_aux=A)
    assert isinstance(predicted, da.Array)
    np.testing.assert_array_equal(predicted.compute(), reference.predict(X, X_aux=A))


@pytest.mark.slow
def test_solver_functions_take_dask_arrays(client, data):
    X, y, A, n0 = data
    X_dask = rows_on_workers(client, X, chunk_sizes(len(y), n0))
    A_dask = da.from_array(A, chunks=100)  # other chunks than X: aligned to X's rows
    for solve, kw in ((lpgd, dict(max_iter=5, tol=1e-9)), (bcd, dict(max_iter=2, block_max_iter=2))):
        reference = solve(X, y, n_components=2, X_aux=A, random_state=0, **kw)
        result = solve(X_dask, y, n_components=2, X_aux=A_dask, random_state=0, **kw)
        assert abs(result.objective - reference.objective) <= 1e-8 * abs(reference.objective)
        assert isinstance(result.codes, da.Array)  # the per-sample codes stay on the workers
        np.testing.assert_allclose(result.codes.compute(), reference.codes, atol=1e-6)


def _shapes(value, out):
    """Shapes and sizes of every array in a gathered result (nested containers walked)."""
    if isinstance(value, dict):
        for v in value.values():
            _shapes(v, out)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _shapes(v, out)
    elif sp.issparse(value):
        out.append((value.shape, value.data.nbytes))
    elif hasattr(value, "shape"):
        out.append((tuple(value.shape), getattr(value, "nbytes", 0)))
    return out


@contextlib.contextmanager
def recorded_gathers(client):
    """Record the shapes and sizes of everything the client gathers while the block runs."""
    gathered = []
    original = client._gather

    async def recording(futures, *args, **kwargs):
        result = await original(futures, *args, **kwargs)
        _shapes(result, gathered)
        return result

    client._gather = recording
    try:
        yield gathered
    finally:
        del client._gather


def assert_no_rows_gathered(gathered, chunk_rows, data_nbytes):
    assert gathered, "nothing was gathered: the recording missed the client's gathers"
    largest_dimension = max((max(shape) for shape, _ in gathered if shape), default=0)
    assert largest_dimension < chunk_rows  # no gathered array has a row per sample, nor a chunk of them
    assert sum(nbytes for _, nbytes in gathered) < data_nbytes / 4


def test_the_client_never_holds_the_rows(client):
    d = make_sdl_classification(6000, 8, 2, n_aux=1, mode="feature", random_state=1)
    X = rows_on_workers(client, d.data, [1500] * 4)
    y = rows_on_workers(client, d.target, [1500] * 4)
    A = rows_on_workers(client, d.aux, [1500] * 4)
    client.run(_clear_transfer_log)
    with recorded_gathers(client) as gathered:
        clf = SDLClassifier(2, mode="feature", solver="lpgd", max_iter=3, random_state=0).fit(X, y, X_aux=A)
        accuracy = clf.score(X, y, X_aux=A)
    assert 0.5 < accuracy <= 1.0
    assert_no_rows_gathered(gathered, 1500, d.data.nbytes)
    # the workers' own record of what they sent out to the scheduler / client (not to each other)
    workers = set(client.scheduler_info()["workers"])
    logs = client.run(_transfer_log)
    sent = [entry for log in logs.values() for entry in log if entry["who"] not in workers]
    assert sent, "the workers' transfer logs are empty: the check would be vacuous"
    assert max(entry["total"] for entry in sent) < 1500 * 8
    assert sum(entry["total"] for entry in sent) < d.data.nbytes / 4


def test_the_recording_sees_rows_pulled_to_the_client(client):
    """The check above can fail: computing X on the client is seen."""
    d = make_sdl_classification(6000, 8, 2, random_state=1)
    X = rows_on_workers(client, d.data, [1500] * 4)
    with recorded_gathers(client) as gathered:
        X.compute()
    with pytest.raises(AssertionError):
        assert_no_rows_gathered(gathered, 1500, d.data.nbytes)


def _clear_transfer_log(dask_worker):
    dask_worker.transfer_outgoing_log.clear()


def _transfer_log(dask_worker):
    return [{"who": entry["who"], "total": entry["total"]} for entry in dask_worker.transfer_outgoing_log]


def test_predictions_are_lazy_row_blocks(client, data):
    X, y, A, n0 = data
    X_dask = rows_on_workers(client, X, chunk_sizes(len(y), n0))
    clf = SDLClassifier(2, mode="feature", xi=0.5, random_state=0, max_iter=20).fit(X, y, X_aux=A)
    for method, shape in (("predict", (len(y),)), ("predict_proba", (len(y), 3)), ("decision_function", (len(y), 3)),
                          ("predict_log_proba", (len(y), 3))):
        lazy = getattr(clf, method)(X_dask, X_aux=A)
        assert isinstance(lazy, da.Array) and lazy.shape == shape and lazy.chunks[0] == X_dask.chunks[0]
        expected = getattr(clf, method)(X, X_aux=A)
        np.testing.assert_allclose(lazy.compute(), expected, rtol=1e-12, atol=1e-12) if method != "predict" else \
            np.testing.assert_array_equal(lazy.compute(), expected)
    codes = clf.transform(X_dask)
    assert isinstance(codes, da.Array)
    np.testing.assert_allclose(codes.compute(), clf.transform(X), rtol=1e-12, atol=1e-12)
    assert clf.score(X_dask, y, X_aux=A) == pytest.approx(clf.score(X, y, X_aux=A), abs=1e-12)
    weights = np.linspace(0.5, 2.0, len(y))
    assert clf.score(X_dask, da.from_array(y, chunks=70), sample_weight=weights, X_aux=A) == pytest.approx(
        clf.score(X, y, sample_weight=weights, X_aux=A), abs=1e-12)


def test_streaming_sums_batch_statistics_on_the_workers(client):
    d = make_sdl_classification(900, 10, 2, n_aux=1, n_classes=3, mode="feature", random_state=2)
    kw = dict(n_components=2, mode="feature", solver="bcd", random_state=0, block_max_iter=2)
    reference = fit_stream(SDLClassifier(**kw), d.data, d.target, X_aux=d.aux, batch_size=300)
    X = rows_on_workers(client, d.data, [150, 150, 1, 299, 300])
    with recorded_gathers(client) as gathered:
        streamed = fit_stream(SDLClassifier(**kw), X, da.from_array(d.target, chunks=100), X_aux=d.aux,
                              batch_size=300)
    assert streamed.n_iter_ == reference.n_iter_ == 3
    # only statistics (r x r, p x r, the classifier's) came back, never a batch of rows
    assert_no_rows_gathered(gathered, 150, d.data.nbytes)
    np.testing.assert_allclose(streamed.history_["objective"], reference.history_["objective"], rtol=1e-9)
    np.testing.assert_allclose(streamed.components_, reference.components_, atol=1e-9)
    np.testing.assert_allclose(streamed.coef_, reference.coef_, atol=1e-8)


def test_streaming_on_unknown_row_chunk_sizes(client):
    # rows selected by a mask: dask knows the chunks' count but not their sizes (NaN)
    d = make_sdl_classification(600, 10, 2, n_aux=1, n_classes=3, mode="feature", random_state=3)
    kw = dict(n_components=2, mode="feature", solver="bcd", random_state=0, block_max_iter=2)
    X, y, A = (da.from_array(a, chunks=150) for a in (d.data, d.target, d.aux))
    reference = fit_stream(SDLClassifier(**kw), X, y, X_aux=A, batch_size=300)
    mask = X[:, 0] > -np.inf
    X_masked, y_masked, A_masked = X[mask], y[mask], A[mask]
    assert np.isnan(X_masked.chunks[0]).all() and np.isnan(y_masked.chunks[0]).all()
    streamed = fit_stream(SDLClassifier(**kw), X_masked, y_masked, X_aux=A_masked, batch_size=300)
    assert streamed.n_iter_ == reference.n_iter_ == 2
    np.testing.assert_allclose(streamed.history_["objective"], reference.history_["objective"], rtol=1e-12)
    np.testing.assert_allclose(streamed.components_, reference.components_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(streamed.coef_, reference.coef_, rtol=1e-12, atol=1e-14)
    # partial_fit on all of it as one batch too
    one = SDLClassifier(**kw).partial_fit(X_masked, y_masked, classes=[0, 1, 2], X_aux=A_masked)
    whole = SDLClassifier(**kw).partial_fit(X, y, classes=[0, 1, 2], X_aux=A)
    np.testing.assert_allclose(one.components_, whole.components_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(one.coef_, whole.coef_, rtol=1e-12, atol=1e-14)


def test_column_chunks_are_merged(client, data):
    X, y, A, n0 = data
    kw = dict(n_components=2, mode="filter", solver="lpgd", xi=0.5, random_state=0, max_iter=3, tol=1e-9)
    reference = SDLClassifier(**kw).fit(X, y, X_aux=A)
    X_dask = da.from_array(X, chunks=(100, 5))  # three blocks along the columns
    assert len(X_dask.chunks[1]) > 1
    fitted = SDLClassifier(**kw).fit(X_dask, y, X_aux=A)
    f_ref, f = reference.history_["objective"][-1], fitted.history_["objective"][-1]
    assert abs(f - f_ref) <= 1e-8 * abs(f_ref)
    np.testing.assert_array_equal(fitted.predict(X_dask, X_aux=A).compute(), reference.predict(X, X_aux=A))


def test_bad_input_on_the_cluster(client, data):
    X, y, A, n0 = data
    X_nan = X.copy()
    X_nan[n0 + 1, 3] = np.nan  # in the last chunk, on the other worker
    X_dask = rows_on_workers(client, X_nan, chunk_sizes(len(y), n0))
    for solver in ("lpgd", "bcd"):
        with pytest.raises(ValueError, match="NaN"):
            SDLClassifier(2, solver=solver, max_iter=2).fit(X_dask, y, X_aux=A)
    assert np.isnan(X_nan[n0 + 1, 3]) and np.isfinite(np.delete(X_nan.ravel(), (n0 + 1) * X.shape[1] + 3)).all()
    good = rows_on_workers(client, X, chunk_sizes(len(y), n0))
    with pytest.raises(ValueError, match="one entry per row"):
        SDLClassifier(2, max_iter=2).fit(good, y[:-1], X_aux=A)
    y_nan = y.astype(float)
    y_nan[-1] = np.nan
    with pytest.raises(ValueError, match="NaN"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's note on casting the NaN label, before the check
        SDLClassifier(2, max_iter=2).fit(good, da.from_array(y_nan, chunks=100), X_aux=A)
    with pytest.raises(ValueError, match="2-D"):
        SDLClassifier(2, max_iter=2).fit(da.from_array(X[:, 0], chunks=100), y)


def test_workers_import_this_checkout(client):
    paths = client.run(_sdlearn_path)
    assert len(paths) == 2 and all(Path(p).resolve().is_relative_to(ROOT) for p in paths.values())


def _sdlearn_path():
    import sdlearn

    return sdlearn.__file__
