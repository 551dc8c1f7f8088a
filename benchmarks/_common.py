"""Helpers shared by the benchmark scripts in this folder.

Every benchmark follows the same contract (see ``docs``/design notes): ``--quick`` runs in a
couple of minutes on 2 CPU cores, a table is printed, a plot is written to ``--out`` and
``--json PATH`` writes the rows (one object per method x data set) so that results can be
compared across versions without parsing text. Results are ratios measured side by side in
one run, never absolute times from another machine.
"""

import argparse
import contextlib
import io
import json
import math
import os
import platform
import sys
import time
import warnings

import numpy as np

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def make_parser(description):
    """Argument parser with the options every benchmark has."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smaller problems, fewer iterations (a couple of minutes on 2 cores)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="folder for the plot(s) (default: benchmarks/results/)")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the rows as JSON to PATH")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, the splits and the solvers")
    parser.add_argument(
        "--blas-threads", type=int, default=1, metavar="N",
        help="limit BLAS/OpenMP threads to N during the run (default 1: on a loaded 2-core machine a "
             "2-thread OpenBLAS spins and inflates short timings 10x; 0 leaves the library default)",
    )
    return parser


def run_benchmark(run, description, argv=None, parser=None):
    """Parse the command line (``parser`` or the common one) and call ``run(args)`` with the
    BLAS thread limit of ``--blas-threads``: the ``main`` of every SDL benchmark."""
    parser = make_parser(description) if parser is None else parser
    args = parser.parse_args(argv)
    with blas_threads(args.blas_threads):
        run(args)


@contextlib.contextmanager
def blas_threads(n):
    """Limit the BLAS/OpenMP thread pools to ``n`` threads (``n`` <= 0: no change)."""
    if n is None or n <= 0:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n):
        yield


def environment():
    """What a reader needs to interpret the timings (versions, cores, BLAS threads)."""
    import scipy
    import sklearn

    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [f"{p['internal_api']} {p.get('version')} ({p['num_threads']} threads)" for p in threadpool_info()]
    except Exception:  # pragma: no cover - threadpoolctl ships with scikit-learn
        pass
    try:
        import sdlearn

        info["sdlearn"] = sdlearn.__version__
    except ImportError:  # pragma: no cover
        pass
    return info


def median_time(fn, repeat=5, min_total=0.0, max_repeat=1000):
    """Median wall time (``time.perf_counter``) of ``fn()`` over ``repeat`` calls.

    With ``min_total`` > 0 it keeps calling (up to ``max_repeat``) until that many seconds were
    spent, which makes the median of very short calls stable.
    """
    times = []
    start = time.perf_counter()
    while len(times) < repeat or (time.perf_counter() - start < min_total and len(times) < max_repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def timed(fn, repeat_if_faster_than=0.5, repeat=3):
    """Run ``fn()`` and time it; calls that take less than ``repeat_if_faster_than`` seconds are
    repeated ``repeat`` times in all and the median is reported (short timings are noisy on a
    shared machine). Returns ``(result of the last call, seconds, caught warnings)``."""
    times, caught = [], []
    result = None
    while True:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t0)
        caught = w
        if times[0] >= repeat_if_faster_than or len(times) >= repeat:
            break
    return result, float(np.median(times)), caught


@contextlib.contextmanager
def silenced():
    """Swallow stdout/stderr (research code that prints and shows progress bars)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        yield buffer


def fmt(value, spec):
    """Format a table cell; ``None``/NaN become 'n/a', strings pass through."""
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return format(value, spec)


def print_table(rows, columns, title=None, file=None):
    """Print ``rows`` (dicts) as a fixed-width text table.

    ``columns`` is a list of ``(key, header, format spec)``; missing keys print as blank.
    """
    file = file or sys.stdout
    cells = [[header for _, header, _ in columns]]
    for row in rows:
        cells.append(["" if key not in row else fmt(row[key], spec) for key, _, spec in columns])
    widths = [max(len(line[j]) for line in cells) for j in range(len(columns))]
    if title:
        print(title, file=file)
    for i, line in enumerate(cells):
        print("  ".join(c.rjust(w) if j >= 2 else c.ljust(w) for j, (c, w) in enumerate(zip(line, widths))), file=file)
        if i == 0:
            print("  ".join("-" * w for w in widths), file=file)
    file.flush()


def _jsonable(value):
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def write_json(path, benchmark, rows, args, extra=None):
    """Write ``{"benchmark", "quick", "seed", "environment", "rows": [...], **extra}`` to ``path``.

    Each row is one object with ``method``, ``dataset`` and its metrics by name (NaN -> null).
    """
    payload = {
        "benchmark": benchmark,
        "quick": bool(args.quick),
        "seed": args.seed,
        "blas_threads": args.blas_threads,
        "environment": environment(),
        "rows": [_jsonable(row) for row in rows],
    }
    if extra:
        payload.update(_jsonable(extra))
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)
    return path


def proc_status(field):
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes, or None where
    there is none (not Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss_bytes():
    """Peak resident memory of this process.

    Linux's ``VmHWM``; not ``getrusage(RUSAGE_SELF).ru_maxrss``, which in a process started by
    ``subprocess`` also counts the parent's resident memory at the fork (Linux carries the
    maximum over ``exec``): a worker started by a parent holding 800 MiB reports 811 MiB there
    and 11 MiB in ``VmHWM``. Elsewhere ``ru_maxrss``.
    """
    peak = proc_status("VmHWM")
    if peak is not None:
        return peak
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


def reset_peak_rss():
    """Reset ``VmHWM`` to the current resident size (Linux >= 4.0); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def fresh_process_env(threads, extra=None):
    """The environment of a benchmark's fresh child process: this checkout first on
    ``PYTHONPATH`` (the code under test), ``OMP_NUM_THREADS=threads``, then ``extra``."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env["OMP_NUM_THREADS"] = str(threads)
    env.update(extra or {})
    return env


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend (None if matplotlib is missing)."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def git_revision(path=None):
    """``git describe --always --dirty`` of the repository holding ``path`` (this folder by
    default), or None outside a git checkout: which code a table was measured on."""
    import subprocess

    folder = path or os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", folder, "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
