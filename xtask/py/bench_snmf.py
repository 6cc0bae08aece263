"""coxlmm.SemiNMF (the Python package, crates/coxlmm-py) against scikit-learn's DictionaryLearning with
the reference's arguments, in the same Python process on the same matrices.

    maturin build --release -m crates/coxlmm-py/Cargo.toml -o target/wheels
    pip install target/wheels/coxlmm-*.whl scikit-learn==1.5.2 'numpy<2.1'
    python xtask/py/bench_snmf.py [--sizes 1000x256,3000x1024] [--k 20] [--threads 0]

The matrices are cox_snmf::synthetic::token_like (seed 0), the ones `cargo xtask bench-snmf` uses, so
the two benchmarks measure the same problems (one through the Python package, one from Rust). Prints
a markdown table (wall time, iterations, objective, and the ratios) and writes JSON to --out.
"""

import argparse
import json
import os
import platform
import time

import numpy as np
import sklearn
from sklearn.decomposition import DictionaryLearning
from threadpoolctl import threadpool_limits

import coxlmm


def objective(X, code, components, alpha):
    X, code, components = (np.asarray(a, dtype=np.float64) for a in (X, code, components))
    return 0.5 * np.sum((X - code @ components) ** 2) + alpha * np.abs(code).sum()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000x256,3000x1024", help="comma-separated MxB")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument(
        "--threads", type=int, default=0,
        help="threads for both (0: each at its default, all cores; scikit-learn through threadpoolctl)",
    )
    ap.add_argument("--out", default="target/bench-snmf/python.json")
    a = ap.parse_args()

    rows = []
    print(f"coxlmm {coxlmm.__version__}, scikit-learn {sklearn.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs, threads {a.threads or 'default'}, load average {os.getloadavg()[0]:.1f}")
    print("| size | K | scikit-learn (s) | iters | coxlmm (s) | iters | speed-up | objective ours / scikit-learn |")
    print("|---|---|---|---|---|---|---|---|")
    for size in a.sizes.split(","):
        m, b = (int(v) for v in size.lower().split("x"))
        X = coxlmm.synthetic.token_like(m, b, seed=0)
        limit = a.threads if a.threads > 0 else None
        with threadpool_limits(limits=limit):
            sk = DictionaryLearning(
                n_components=a.k, alpha=a.alpha, positive_code=True, fit_algorithm="cd",
                transform_algorithm="lasso_cd", max_iter=5000, random_state=0,
            )
            t = time.perf_counter()
            sk_code = sk.fit_transform(X)
            sk_wall = time.perf_counter() - t
        ours = coxlmm.SemiNMF(n_components=a.k, alpha=a.alpha, n_jobs=a.threads if a.threads > 0 else None)
        t = time.perf_counter()
        code = ours.fit_transform(X)
        wall = time.perf_counter() - t
        sk_obj = objective(X, sk_code, sk.components_, a.alpha)
        obj = objective(X, code, ours.components_, a.alpha)
        row = {
            "m": m, "b": b, "k": a.k, "threads": a.threads,
            "sklearn": {"wall_s": sk_wall, "n_iter": int(sk.n_iter_), "objective": sk_obj},
            "coxlmm": {"wall_s": wall, "n_iter": int(ours.n_iter_), "objective": obj},
            "speedup": sk_wall / wall, "objective_ratio": obj / sk_obj,
            "load_average": os.getloadavg()[0],
        }
        rows.append(row)
        print(f"| {m}x{b} | {a.k} | {sk_wall:.2f} | {sk.n_iter_} | {wall:.2f} | {ours.n_iter_} | "
              f"{sk_wall / wall:.1f}x | {obj / sk_obj:.5f} |", flush=True)
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        json.dump({"coxlmm": coxlmm.__version__, "sklearn": sklearn.__version__, "numpy": np.__version__,
                   "python": platform.python_version(), "cpus": os.cpu_count(), "results": rows}, f, indent=1)


if __name__ == "__main__":
    main()
