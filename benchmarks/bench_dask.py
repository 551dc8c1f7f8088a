"""Benchmark: LPGD on a dask.distributed LocalCluster against the in-memory NumPy fit (issue 16).

A LocalCluster of 2 worker processes (one thread each, BLAS pinned to one thread) holds ``X``.
For growing n (p and r fixed), with the same planted data in both:

* **dask**: ``X`` and ``y`` are generated *on the workers*, one row block per task (the client
  never builds them), persisted, and ``lpgd`` runs on the row-chunked dask arrays; ``X`` has
  the same number of row chunks (8) for every n, so the task graphs do not grow with n;
* **numpy**: where ``X`` fits comfortably, the same blocks are generated in a fresh process
  (spawned, one BLAS thread) and ``lpgd`` runs on the NumPy array there.

Per n the table gives the time per LPGD iteration (median of ``diff(history['time'])``) of both,
their ratio, the whole fit's time (set-up included), the relative difference of the final
objectives (same iterations, ``tol`` off), and peak memory: the real peak resident set size
(Linux ``VmHWM``) of the client process (the LocalCluster's scheduler runs there too), of each
worker (read with ``client.run``) and of the NumPy process, against the size of ``X``. The peak
only grows, and the sizes are run in increasing order, so the client's value after size n is its
peak over all sizes up to n: if it held ``X`` it would grow with n.

Run ``python benchmarks/bench_dask.py --quick`` (about 1.5 minutes on a loaded 2-core machine) or
without ``--quick`` (about 3 minutes). The plot goes to ``--out``; ``--json PATH`` writes the rows.
"""

import os
import sys
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")  # the workers inherit it: one BLAS thread each
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from _common import environment, git_revision, print_table, pyplot, run_benchmark, write_json  # noqa: E402

MB = 2.0**20


def config(quick):
    # a fixed number of row chunks (4 per worker): the task graphs are the same for every n, only
    # the chunks grow, so a growing client would be holding data, not bookkeeping
    if quick:
        return {"p": 100, "r": 5, "n_chunks": 8, "iters": 5, "n": [10_000, 20_000, 40_000, 80_000],
                "numpy_max_n": 20_000}
    return {"p": 100, "r": 5, "n_chunks": 8, "iters": 6, "n": [20_000, 40_000, 80_000, 160_000, 320_000],
            "numpy_max_n": 80_000}


# ----------------------------------------------------------------------------------------------
# planted data, one row block at a time (the same numbers on a worker and in the NumPy process)
# ----------------------------------------------------------------------------------------------
def planted_block(k, rows, p, r, seed):
    """Row block ``k`` of a planted filter-mode problem: ``[X_k | y_k]`` (``rows`` x (p + 1)).

    The dictionary and the classifier depend on ``seed`` only; block ``k``'s codes, noise and
    labels on ``(seed, k)``, so blocks can be drawn anywhere, in any order.
    """
    model = np.random.default_rng([seed, 2**31])
    W = np.linalg.qr(model.standard_normal((p, r)))[0] * np.sqrt(p)
    beta = model.standard_normal(r)
    rng = np.random.default_rng([seed, k])
    H = rng.standard_normal((rows, r))
    X = H @ W.T + rng.standard_normal((rows, p))
    y = (H @ beta + rng.logistic(size=rows) > 0).astype(np.float64)
    return np.concatenate([X, y[:, None]], axis=1)


def block_sizes(n, n_chunks):
    """``n_chunks`` row blocks of (nearly) equal sizes."""
    return [len(part) for part in np.array_split(np.arange(n), n_chunks)]


def dask_data(n, cfg, seed):
    """``X`` (n x p) and ``y`` as dask arrays whose blocks are drawn on the workers, persisted."""
    import dask
    import dask.array as da

    # by reference to this module (on the workers' path, see start_cluster), not pickled by value
    from bench_dask import planted_block as block

    p, r = cfg["p"], cfg["r"]
    blocks = [da.from_delayed(dask.delayed(block, pure=True)(k, rows, p, r, seed), shape=(rows, p + 1),
                              dtype=np.float64)
              for k, rows in enumerate(block_sizes(n, cfg["n_chunks"]))]
    Z = da.concatenate(blocks, axis=0)
    X, y = dask.persist(Z[:, :p], Z[:, p])
    return X, y


def numpy_fit(n, cfg, seed):
    """The in-memory fit on the same blocks, in this (fresh) process: iteration times, the final
    objective, the fit's time and this process's peak RSS."""
    from threadpoolctl import threadpool_limits

    from sdlearn import lpgd

    p, r = cfg["p"], cfg["r"]
    Z = np.concatenate([planted_block(k, rows, p, r, seed) for k, rows in enumerate(block_sizes(n, cfg["n_chunks"]))])
    X, y = np.ascontiguousarray(Z[:, :p]), Z[:, p].copy()
    del Z
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        result = lpgd(X, y, n_components=r, max_iter=cfg["iters"], tol=1e-300, random_state=seed)
        total = time.perf_counter() - t0
    return {"iter_s": float(np.median(np.diff(result.history["time"]))), "objective": float(result.objective),
            "fit_s": total, "peak_rss_mb": _peak_rss_mb(), "n_iter": int(result.n_iter)}


def _peak_rss_mb():
    """This process's peak resident set size (Linux ``VmHWM``). Not ``getrusage``'s
    ``ru_maxrss``: in a spawned process (a worker, the NumPy process) it also counts the
    parent's resident memory at the fork."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / MB  # kB
    raise RuntimeError("no VmHWM in /proc/self/status (the benchmark reads peak memory on Linux only)")


def numpy_in_fresh_process(n, cfg, seed):
    """:func:`numpy_fit` in a spawned process (its own peak RSS; the client's stays clean)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        from bench_dask import numpy_fit as fit  # by reference to this module, not to __main__

        return pool.submit(fit, n, cfg, seed).result()


def dask_fit(client, n, cfg, seed):
    from sdlearn import lpgd

    X, y = dask_data(n, cfg, seed)
    from distributed import wait

    wait([X, y])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        result = lpgd(X, y, n_components=cfg["r"], max_iter=cfg["iters"], tol=1e-300, random_state=seed)
        total = time.perf_counter() - t0
    workers = client.run(_peak_rss_mb)
    return {"iter_s": float(np.median(np.diff(result.history["time"]))), "objective": float(result.objective),
            "fit_s": total, "client_rss_mb": _peak_rss_mb(), "worker_rss_mb": sorted(workers.values()),
            "n_iter": int(result.n_iter)}


def start_cluster():
    import distributed

    # the workers import sdlearn (from this checkout) and this module's data generator by name
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([ROOT, HERE] + ([old] if old else []))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=0,
                                           dashboard_address=None, silence_logs=40)
    client = distributed.Client(cluster)
    client.wait_for_workers(2, timeout=120)
    return cluster, client


COLUMNS = [
    ("n", "n", "d"),
    ("X_mb", "X MiB", ".0f"),
    ("dask_iter_ms", "dask ms/iter", ".1f"),
    ("numpy_iter_ms", "numpy ms/iter", ".1f"),
    ("iter_ratio", "dask/numpy", ".2f"),
    ("dask_fit_s", "dask fit s", ".2f"),
    ("numpy_fit_s", "numpy fit s", ".2f"),
    ("rel_objective_diff", "rel. obj. diff", ".1e"),
    ("client_rss_mb", "client peak MiB", ".0f"),
    ("worker_rss_mb", "worker peaks MiB", ""),
    ("numpy_rss_mb", "numpy peak MiB", ".0f"),
]


def run(args):
    quick, seed = args.quick, args.seed
    cfg = config(quick)
    t_start = time.perf_counter()
    print(f"bench_dask ({'quick' if quick else 'full'} mode, seed {seed}): LocalCluster of 2 worker processes x 1 thread; "
          f"p={cfg['p']}, r={cfg['r']}, X in {cfg['n_chunks']} row chunks, {cfg['iters']} LPGD iterations (tol off), filter mode")
    print("environment: " + ", ".join(f"{k}={v}" for k, v in environment().items()) + f", git={git_revision()}")
    cluster, client = start_cluster()
    try:
        baseline = _peak_rss_mb()
        # warm-up: imports and first tasks on the workers (not timed)
        dask_fit(client, cfg["n"][0] // 2, dict(cfg, iters=2), seed + 1)
        print(f"client peak RSS after start-up and a warm-up fit: {_peak_rss_mb():.0f} MiB "
              f"(before the warm-up {baseline:.0f} MiB)")
        rows = []
        for n in cfg["n"]:
            row = {"method": "lpgd", "dataset": f"planted n={n}", "n": n, "p": cfg["p"], "r": cfg["r"],
                   "X_mb": n * cfg["p"] * 8 / MB}
            d = dask_fit(client, n, cfg, seed)
            row.update(dask_iter_ms=1e3 * d["iter_s"], dask_fit_s=d["fit_s"], dask_objective=d["objective"],
                       client_rss_mb=d["client_rss_mb"], worker_rss_mb=" / ".join(f"{v:.0f}" for v in d["worker_rss_mb"]),
                       worker_rss_mb_max=max(d["worker_rss_mb"]), dask_n_iter=d["n_iter"])
            if n <= cfg["numpy_max_n"]:
                m = numpy_in_fresh_process(n, cfg, seed)
                row.update(numpy_iter_ms=1e3 * m["iter_s"], numpy_fit_s=m["fit_s"], numpy_objective=m["objective"],
                           numpy_rss_mb=m["peak_rss_mb"], iter_ratio=d["iter_s"] / m["iter_s"],
                           rel_objective_diff=abs(d["objective"] - m["objective"]) / abs(m["objective"]))
            rows.append(row)
            print(f"  [{time.perf_counter() - t_start:6.1f}s] n={n} done", flush=True)
    finally:
        client.close()
        cluster.close()

    print()
    print_table(rows, COLUMNS, title="LPGD per iteration: dask (2 worker processes) against NumPy (one process); "
                                     "peak RSS of each process")
    grow = rows[-1]["client_rss_mb"] - rows[0]["client_rss_mb"]
    print(f"client peak RSS grew by {grow:.0f} MiB while X grew by {rows[-1]['X_mb'] - rows[0]['X_mb']:.0f} MiB")

    plt = pyplot()
    if plt is None:
        print("matplotlib not installed: no plot.")
    else:
        path = plot(plt, rows, args.out)
        print(f"plot: {path}")
    if args.json:
        write_json(args.json, "bench_dask", rows, args, extra={"git": git_revision(), "config": cfg})
        print(f"rows written to {args.json}")
    print(f"total {time.perf_counter() - t_start:.0f} s")


def plot(plt, rows, out):
    os.makedirs(out, exist_ok=True)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    n = [row["n"] for row in rows]
    both = [row for row in rows if "numpy_iter_ms" in row]
    a.loglog(n, [row["dask_iter_ms"] for row in rows], "o-", label="dask, 2 worker processes")
    a.loglog([row["n"] for row in both], [row["numpy_iter_ms"] for row in both], "s-", label="NumPy, one process")
    a.set_xlabel("n (samples)")
    a.set_ylabel("ms per LPGD iteration")
    a.legend()
    size = [row["X_mb"] for row in rows]
    b.loglog(size, [row["client_rss_mb"] for row in rows], "o-", label="client (with the scheduler)")
    b.loglog(size, [row["worker_rss_mb_max"] for row in rows], "^-", label="largest worker")
    b.loglog([row["X_mb"] for row in both], [row["numpy_rss_mb"] for row in both], "s-", label="NumPy process")
    b.loglog(size, size, "k:", label="size of X")
    b.set_xlabel("size of X (MiB)")
    b.set_ylabel("peak RSS (MiB)")
    b.legend()
    fig.tight_layout()
    path = os.path.join(out, "dask_time_memory.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    run_benchmark(run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
