#!/usr/bin/env python3
"""KNN latency, recall and size per model: float vs int8 vs bit, with and
without float rescoring, on the projects bench/run.py generated.

    cargo build --release && python3 bench/run.py && python3 bench/knn.py

For each size in bench/out/<size>, adds quantized variants of every shipped
model as models.d drop-ins (same embeddings file), builds their databases and
runs `pipe compare --json` (k = 10, 200 sampled movies, seed 42): median and
p95 query latency, database size, and recall@10 against the float original.
Writes bench/KNN.md.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PIPE = REPO / "target" / "release" / "pipe"
BASES = {"potion": 64, "bge-micro": 384, "nomic": 768}
VARIANTS = [("int8", False), ("int8", True), ("bit", False), ("bit", True)]


def variant_id(base, q, rescore):
    return f"{base}-{q}" + ("-rescore" if rescore else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="30000,100000")
    ap.add_argument("--out", default=str(REPO / "bench" / "KNN.md"))
    args = ap.parse_args()
    env = dict(os.environ, SOURCE_DATE_EPOCH="1767225600")
    lines = ["# KNN latency, recall and size: float vs int8 vs bit", "",
             "Reproduce: `cargo build --release && python3 bench/run.py && python3 bench/knn.py`", "",
             "Per model, through `pipe compare` (the front end's vec0 KNN query, k = 10, 200 sampled movies, seed 42). "
             "Recall@10 is against the float database built from the same embeddings. Rescoring takes k × `oversample` "
             "candidates from the quantized column (the defaults: 8 for int8, 32 for bit) and ranks them by exact "
             "float distance; the float vectors are a rowid table beside the quantized one.", ""]
    for size in args.sizes.split(","):
        work = REPO / "bench" / "out" / size
        if not work.exists():
            sys.exit(f"{work} is missing: run bench/run.py --sizes {size} first")
        ids = []
        for base, dims in BASES.items():
            ids.append(base)
            for q, rescore in VARIANTS:
                vid = variant_id(base, q, rescore)
                ids.append(vid)
                (work / "models.d" / f"{vid}.toml").write_text(
                    f'id = "{vid}"\nname = "{base} {q}{" rescored" if rescore else ""}"\ndimensions = {dims}\n'
                    f'embeddings = "data/embeddings-{base}-movies.db"\nquantization = "{q}"\nrescore = {str(rescore).lower()}\n')
        subprocess.run([PIPE, "build", "-q", "movies-db"], cwd=work, env=env, check=True)
        p = subprocess.run([PIPE, "compare", "--models", ",".join(ids), "--sample", "200", "--json"],
                           cwd=work, env=env, check=True, capture_output=True, text=True)
        report = json.loads(p.stdout)
        recall = {r["model"]: r["recall"] for r in report["recall"]}
        lines += [f"## {int(size):,} movies", "",
                  "| model | vectors | database | p50 ms | p95 ms | recall@10 |", "|---|---|---|---|---|---|"]
        for m in report["models"]:
            rec = recall.get(m["model"])
            lines.append(f"| {m['model']} | {m['vectors']:,} | {m['dbBytes'] / 1e6:.1f} MB | {m['latencyMedianMs']:.2f} | "
                         f"{m['latencyP95Ms']:.2f} | {'float' if rec is None else f'{rec:.3f}'} |")
        lines.append("")
        print(f"{size}: done", file=sys.stderr)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
