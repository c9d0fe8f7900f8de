#!/usr/bin/python3
"""The outside floor for tools/bench_train: one X·G product (G d×2k) by numpy's BLAS on the
same matrix, and one read of X (a column sum), best of 3 each. Prints one JSON line.

  blas_reference.py X.npy K THREADS

Run it with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, so that OpenBLAS picks its own kernel
(bench_train does). numpy uses the reference BLAS unless libopenblas0-pthread is installed; the
"blas" field says which library was loaded.
"""
import json
import sys
import time

import numpy as np


def best_of(f, reps=3):
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    path, k, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    X = np.load(path)
    G = np.random.default_rng(3).standard_normal((X.shape[1], 2 * k))
    blas = "unknown"
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if info:
            blas = f"{info[0].get('internal_api')} {info[0].get('version')} ({info[0].get('architecture')})"
        limits = threadpool_limits(limits=threads, user_api="blas")
    except ImportError:
        limits = None
    xg = best_of(lambda: X @ G)
    read = best_of(lambda: X.sum(axis=0))
    del limits
    print(json.dumps({"blas": blas, "xg_seconds": xg, "read_seconds": read}))


if __name__ == "__main__":
    main()
