"""Runs the CoX-LMM reference decomposition (scikit-learn DictionaryLearning with the xl-vlms arguments)
on a .npy matrix and prints one JSON line: wall time, iterations, objective. Used by `cargo xtask bench-snmf`."""
import json
import sys
import time

import numpy as np
import sklearn
from sklearn.decomposition import DictionaryLearning

path, k, alpha, max_iter = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
x = np.load(path)
t0 = time.perf_counter()
model = DictionaryLearning(
    n_components=k, alpha=alpha, positive_code=True, fit_algorithm="cd",
    transform_algorithm="lasso_cd", max_iter=max_iter, random_state=0,
)
code = model.fit_transform(x)
wall = time.perf_counter() - t0
d = model.components_
x64, c64, d64 = x.astype(np.float64), code.astype(np.float64), d.astype(np.float64)
objective = 0.5 * np.sum((x64 - c64 @ d64) ** 2) + alpha * np.abs(c64).sum()
print(json.dumps({
    "sklearn": sklearn.__version__, "wall_s": wall, "n_iter": int(model.n_iter_),
    "objective": float(objective), "last_error": float(model.error_[-1]),
    "zeros": float(np.mean(code == 0)),
}))
