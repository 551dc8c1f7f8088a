"""
===========================================
SDL on a Dask cluster (data on the workers)
===========================================

:class:`sdlearn.SDLClassifier` accepts a ``dask.array`` chunked by rows wherever it accepts a
NumPy array. Here a ``LocalCluster`` stands in for a real cluster: the data
is cut into row chunks held by two workers, LPGD runs on it (only thin ``p x r`` products and
scalars reach the client at every iteration), and the result is compared with the in-memory fit
on the same data. Predictions on the dask array are lazy dask arrays.

To run the same code on an existing cluster, replace the ``LocalCluster`` by its scheduler's
address, ``Client("tcp://scheduler-host:8786")``. See :ref:`larger_than_memory` for what is
kept on the workers and what travels.
"""

# %%
# A small cluster
# ---------------
# ``processes=False`` keeps the two workers as threads of this process, which starts in a
# fraction of a second (enough for a gallery example). With ``processes=True`` (the default)
# each worker is its own process, as on a real cluster; the code below is the same.
import warnings

import dask.array as da
import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster
from sklearn.exceptions import ConvergenceWarning

from sdlearn import SDLClassifier
from sdlearn.datasets import make_sdl_classification

warnings.filterwarnings("ignore", category=ConvergenceWarning)
cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
client = Client(cluster)

# %%
# Data in row chunks
# ------------------
# In real use the workers read their rows themselves (``da.from_zarr``, Parquet files,
# ``da.from_delayed``), so that the client never holds the data. This example is small and
# builds it in memory first, to compare with the in-memory fit; ``persist`` then sends the row
# chunks to the workers. The chunks have uneven sizes on purpose.
data = make_sdl_classification(
    n_samples=3000, n_features=60, n_components=4, n_aux=2, random_state=0
)
chunks = (900, 700, 800, 600)
X = da.from_array(data.data, chunks=(chunks, 60)).persist()
X_aux = da.from_array(data.aux, chunks=(chunks, 2)).persist()
y = da.from_array(data.target, chunks=(chunks,)).persist()
print(X)

# %%
# Fit on the cluster and in memory
# --------------------------------
# The same estimator, the same options. Every sum over the samples is computed chunk by chunk
# on the workers and reduced in a tree; the iterates are the in-memory ones up to rounding.
params = dict(n_components=4, solver="lpgd", xi=data.xi, tol=1e-10, max_iter=40, random_state=0)
on_cluster = SDLClassifier(**params).fit(X, y, X_aux=X_aux)
in_memory = SDLClassifier(**params).fit(data.data, data.target, X_aux=data.aux)

f_cluster = on_cluster.history_["objective"][-1]
f_memory = in_memory.history_["objective"][-1]
print(f"iterations: {on_cluster.n_iter_} on the cluster, {in_memory.n_iter_} in memory")
print(f"final objective: {f_cluster:.10f} vs {f_memory:.10f} (relative difference "
      f"{abs(f_cluster - f_memory) / abs(f_memory):.1e})")

# %%
# Lazy predictions
# ----------------
# ``predict`` (and ``predict_proba``, ``decision_function``, ``transform``) on a dask array
# returns a dask array with the same row chunks: nothing is computed until it is asked for, one
# task per chunk, so a fitted model can label more data than the client can hold. ``score``
# counts the correct predictions on the workers.
labels = on_cluster.predict(X, X_aux=X_aux)
print(type(labels).__name__, labels.chunks[0])
same = np.array_equal(labels.compute(), in_memory.predict(data.data, X_aux=data.aux))
print(f"same predictions as the in-memory model: {same}")
print(f"training accuracy (computed on the workers): {on_cluster.score(X, y, X_aux=X_aux):.3f}")

# %%
# The two objective histories coincide:
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.semilogy(np.array(in_memory.history_["objective"]) - min(in_memory.history_["objective"]) + 1e-12,
            lw=3, alpha=0.5, label="in memory (NumPy)")
ax.semilogy(np.array(on_cluster.history_["objective"]) - min(in_memory.history_["objective"]) + 1e-12,
            "k--", label="on the cluster (dask)")
ax.set_xlabel("LPGD iteration")
ax.set_ylabel("objective - best")
ax.legend()
fig.tight_layout()

# %%
# Close the client and the cluster when done.
client.close()
cluster.close()
