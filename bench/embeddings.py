#!/usr/bin/env python3
"""Benchmark the embeddings stage with the built-in model2vec provider, end
to end through the binary: a full embedding of every movie (texts/s), the
build after a one-movie edit (exactly one text sent), and peak memory.

    cargo build --release && bash .ci/deps && python3 bench/embeddings.py --sizes 30000,100000

Each size gets a project under bench/out/embed-<size> (gitignored) with data
from `pipe sample --seed 1`, one model (64 dimensions) whose [embed] table
runs the model2vec model `.ci/deps` unpacks (tokenlearn-static-model), and
the embeddings and movies-db targets. Peak memory is GNU time's %M of the
pipe process. Writes a Markdown table to stdout.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PIPE = REPO / "target" / "release" / "pipe"
MODEL = Path(os.environ.get("PIPE_MODEL2VEC_MODEL", REPO / ".deps/models/tokenlearn-static-model"))

PIPELINE = """[inputs]
movies = "data/movies.json"
collections = "data/collections.json"

[targets.embeddings]
kind = "embeddings"

[targets.movies-db]
kind = "movies-db"
path = "public/data/{model}/movies.db"
"""

MODEL_FILE = """id = "m2v"
name = "model2vec (tokenlearn-static-model)"
dimensions = 64
embeddings = "data/embeddings-m2v-movies.db"

[embed]
provider = "model2vec"
path = "models/m2v"
"""


def timed(cmd, cwd):
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *map(str, cmd)], cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed: {cmd}\n{p.stdout}\n{p.stderr}")
    rss = int(p.stderr.strip().splitlines()[-1])
    return dt, rss, p.stdout


def result(report, name):
    return next(r for r in json.loads(report)["results"] if r["name"] == name)


def bench(n):
    work = REPO / "bench" / "out" / f"embed-{n}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "models.d").mkdir(parents=True)
    (work / "pipeline.toml").write_text(PIPELINE)
    (work / "models.d" / "m2v.toml").write_text(MODEL_FILE)
    shutil.copytree(MODEL, work / "models" / "m2v")
    subprocess.run([PIPE, "sample", "--movies", str(n), "--seed", "1", "--dir", work, "-q"], cwd=work, check=True)
    # Only movies.json matters here; the sample's embeddings file is ours to make.
    for f in (work / "data").glob("embeddings-*.db"):
        f.unlink()

    full_s, full_rss, out = timed([PIPE, "build", "--json", "embeddings@m2v"], work)
    r = result(out, "embeddings@m2v")
    sent = int(r["stats"]["texts_sent"])
    stage_s = r["millis"] / 1000
    db_s, _, _ = timed([PIPE, "build", "--json"], work)

    movies = json.loads((work / "data" / "movies.json").read_text())
    key = next(k for k in movies if not k.startswith("_"))
    movies[key].setdefault("metadata", {})
    movies[key]["metadata"] = dict(movies[key]["metadata"] or {}, Plot="An edited plot for the benchmark.")
    (work / "data" / "movies.json").write_text(json.dumps(movies, indent=2))
    edit_s, edit_rss, out = timed([PIPE, "build", "--json"], work)
    e = result(out, "embeddings@m2v")
    return {
        "n": n,
        "sent": sent,
        "full_s": full_s,
        "stage_s": stage_s,
        "texts_per_s": sent / stage_s if stage_s else 0,
        "full_rss_mb": full_rss / 1024,
        "db_s": db_s,
        "edit_s": edit_s,
        "edit_sent": int(e["stats"]["texts_sent"]),
        "edit_stage_s": e["millis"] / 1000,
        "edit_rss_mb": edit_rss / 1024,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="30000,100000")
    args = ap.parse_args()
    if not (MODEL / "model.safetensors").is_file():
        sys.exit(f"no model at {MODEL}: run .ci/deps")
    rows = [bench(int(s)) for s in args.sizes.split(",")]
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores; model2vec provider, tokenlearn-static-model (64 d)\n")
    print("| movies | texts embedded | embeddings stage | texts/s | whole command (peak RSS) | then movies-db | one-movie edit: texts sent | edit: embeddings stage | edit: whole build (peak RSS) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']:,} | {r['sent']:,} | {r['stage_s']:.2f} s | {r['texts_per_s']:,.0f} | {r['full_s']:.2f} s ({r['full_rss_mb']:.0f} MB) | {r['db_s']:.2f} s | {r['edit_sent']} | {r['edit_stage_s']:.2f} s | {r['edit_s']:.2f} s ({r['edit_rss_mb']:.0f} MB) |")


if __name__ == "__main__":
    main()
