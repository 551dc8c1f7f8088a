"""The per-iteration record of a fit, its progress display and the user's callback.

Every solver reports each iterate (entry 0 is the starting point) to a :class:`History`, which

* appends the objective, its parts (in the user's units), the stationarity measure and the time;
* shows progress with ``verbose``: a tqdm bar with the objective when tqdm is installed, plain
  lines otherwise (and every iteration with ``verbose >= 2``);
* calls ``callback(iteration, factors, entry)`` and reports whether it asked to stop.
"""

import math
import time

try:  # optional: the progress bar of ``verbose``
    from tqdm.auto import tqdm as _tqdm
except ImportError:  # pragma: no cover - exercised by monkeypatching _tqdm in the tests
    _tqdm = None

KEYS = ("objective", "logistic", "reconstruction", "penalty", "stationarity", "time")


class LazyFactors:
    """The current factors for a callback, built on first attribute access (an unused argument
    costs nothing). Has the attributes of :class:`~sdlearn.SDLResult`."""

    def __init__(self, build):
        self._build = build
        self._result = None

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if self._result is None:
            self._result = self._build()
        return getattr(self._result, name)


class History:
    """Per-iteration record of the objective, its parts, stationarity and wall time.

    Parameters
    ----------
    name : str
        Solver name for the progress display.
    max_iter : int
        Iterations planned (the length of the progress bar).
    verbose : int, default=0
        0: silent; 1: a tqdm bar (plain lines every 10 iterations without tqdm); 2: a line per
        iteration.
    callback : callable or None, default=None
        ``callback(iteration, factors, entry)``; a true return value stops the fit.
    """

    def __init__(self, name, max_iter, verbose=0, callback=None):
        self.data = {key: [] for key in KEYS}
        self.start = time.perf_counter()
        self.name, self.verbose, self.callback = name, verbose, callback
        self.bar = None
        if verbose == 1 and _tqdm is not None:
            self.bar = _tqdm(total=max_iter, desc=name, dynamic_ncols=True)

    def append(self, parts, stationarity, factors=None):
        """Record one iterate (``parts`` in the user's units) and call the callback.

        Returns
        -------
        stop : bool
            Whether the callback asked to stop.
        """
        for key in ("objective", "logistic", "reconstruction", "penalty"):
            self.data[key].append(float(parts[key]))
        self.data["stationarity"].append(float(stationarity))
        self.data["time"].append(time.perf_counter() - self.start)
        t = len(self.data["objective"]) - 1
        entry = {key: values[-1] for key, values in self.data.items()}
        self._show(t, entry)
        if self.callback is None:
            return False
        return bool(self.callback(t, factors, entry))

    def _show(self, t, entry):
        if not self.verbose:
            return
        if self.bar is not None:
            if t > 0:
                self.bar.update(1)
            self.bar.set_postfix(objective=f"{entry['objective']:.6e}", stationarity=f"{entry['stationarity']:.2e}",
                                 refresh=False)
        elif self.verbose > 1 or t % 10 == 0:
            print(
                f"[{self.name}] iter {t:4d}  objective {entry['objective']:.6e}  "
                f"logistic {entry['logistic']:.4e}  recon {entry['reconstruction']:.4e}  "
                f"stationarity {entry['stationarity']:.3e}  {entry['time']:.2f}s",
                flush=True,
            )

    def close(self):
        """End the progress display."""
        if self.bar is not None:
            self.bar.refresh()  # the last objective, even when the fit was faster than a redraw
            self.bar.close()
            self.bar = None


def relative_decrease(values, scale):
    """Decrease over the last step of a sequence of objective values, relative to ``scale``.

    The solvers measure the decrease of their (rescaled) objective against its classifier part
    (logistic loss + penalty): the reconstruction term can be orders of magnitude larger and
    almost constant, and measured against the whole objective a stopping rule would end the run
    before the classifier is trained. Infinity before two values exist; a non-finite value gives
    ``-inf`` (an increase).
    """
    if len(values) < 2:
        return math.inf
    if not (math.isfinite(values[-1]) and math.isfinite(values[-2])):
        return -math.inf
    return (values[-2] - values[-1]) / max(abs(scale), 1e-12 * abs(values[-1]), 1e-300)
