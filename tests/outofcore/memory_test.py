#!/usr/bin/env python3
"""CI test: train --stream on holds memory independent of the rows, and recovers the teacher.

  memory_test.py NNLIFT WORK_DIR

Writes planted float32 .npy files of 2e5 and 2e6 rows (d = 10, k = 3; tools/outofcore_data.py),
trains on each with --stream on and checks: the peak resident memory of the larger run is under
200 MB and within 30 MB of the smaller one's (it would grow by ~160 MB per copy of the data if
the rows were held); the in-memory run of the larger one uses more (the check can fail); and
min |cos| between the model's and the teacher's first-layer rows is >= 0.99.
"""
import itertools
import json
import os
import resource
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
GENERATOR = os.path.join(HERE, "..", "..", "tools", "outofcore_data.py")


def peak_rss_mb(cmd):
    """Runs cmd in a fresh child (a fork of a small helper) and returns its peak RSS in MB."""
    helper = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(r.returncode)\n"
    )
    out = subprocess.run([sys.executable, "-c", helper] + cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {out.returncode}:\n{out.stderr}")
    return int(out.stdout.split()[-1]) / 1024.0


def min_abs_cos(model_path, truth_path):
    W = np.array(json.load(open(model_path))["hidden"]["weights"])
    T = np.load(truth_path)["W1"]
    W = W / np.linalg.norm(W, axis=1, keepdims=True)
    C = np.abs(T @ W.T)
    k = C.shape[0]
    return max(min(C[i, p[i]] for i in range(k)) for p in itertools.permutations(range(k)))


def main():
    nnlift, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    peaks = {}
    for rows in (200000, 2000000):
        data = os.path.join(work, f"planted_{rows}.npy")
        subprocess.run([sys.executable, GENERATOR, data, "--rows", str(rows), "--dim", "10",
                        "--hidden", "3", "--seed", "3"], check=True)
        model = os.path.join(work, f"model_{rows}.json")
        peaks[rows] = peak_rss_mb([nnlift, "train", "--data", data, "--hidden", "3", "--model",
                                   model, "--stream", "on", "--quiet", "--threads", "2"])
        cos = min_abs_cos(model, data + ".truth.npz")
        print(f"rows {rows}: peak RSS {peaks[rows]:.1f} MB, min |cos| {cos:.4f}")
        if rows == 2000000 and cos < 0.99:
            sys.exit(f"FAIL: min |cos| {cos:.4f} < 0.99")
    held = peak_rss_mb([nnlift, "train", "--data", os.path.join(work, "planted_2000000.npy"),
                        "--hidden", "3", "--model", os.path.join(work, "held.json"),
                        "--stream", "off", "--quiet", "--threads", "2"])
    print(f"rows 2000000 held in memory (--stream off): peak RSS {held:.1f} MB")
    if peaks[2000000] >= 200:
        sys.exit(f"FAIL: streamed peak RSS {peaks[2000000]:.1f} MB >= 200 MB")
    if peaks[2000000] > peaks[200000] + 30:
        sys.exit("FAIL: streamed memory grows with the rows")
    if held < peaks[2000000] + 100:
        sys.exit("FAIL: the in-memory run should hold the rows (the measurement cannot tell)")
    for f in os.listdir(work):
        os.remove(os.path.join(work, f))
    print("memory_test: passed")


if __name__ == "__main__":
    main()
