#!/usr/bin/env python3
"""Benchmark a records-db target end to end through the binary: generated
records (short texts) embedded by two models with the built-in model2vec
provider into one database per model, at 100k and 1M records; then the
build after a one-record edit and a no-op build. Peak memory at 1M must
stay well under 1 GB.

    cargo build --release && bash .ci/deps && python3 bench/records.py --sizes 100000,1000000

Each size gets a project under bench/out/records-<size> (gitignored): a JSON
Lines file of generated products (`{"sku", "title", "category", "price"}`,
titles of 3 to 6 words from a fixed vocabulary, seeded), two model files on
the model `.ci/deps` unpacks (tokenlearn-static-model, 64 dimensions):
`plain` (cosine, float32) and `quant` (l2, int8 rescored, its own text
template), and a per-model records-db target. Peak memory is GNU time's %M
of the pipe process. Writes a Markdown table to stdout (and -v: each
build's report to stderr).
"""
import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

# The model2vec test model, found as bench/embeddings.py finds it (the
# script's folder is first on sys.path: `python3 bench/records.py`).
from embeddings import MODEL

REPO = Path(__file__).resolve().parent.parent
PIPE = REPO / "target" / "release" / "pipe"

PIPELINE = """[inputs]
products = "data/products.jsonl"

[targets.products-db]
kind = "records-db"
records = "products"
id = "sku"
columns = { title = "text", category = "text", price = "real" }
fts = ["title"]
layout = "per-model"
path = "public/{model}/products.db"
text = { default = "{{ title }}", quant = "{{ title }} ({{ category }})" }
"""

MODELS = {
    "plain": """id = "plain"
name = "model2vec, cosine"
dimensions = 64
metric = "cosine"
default = true

[embed]
provider = "model2vec"
path = "models/m2v"
""",
    "quant": """id = "quant"
name = "model2vec, l2, int8 rescored"
dimensions = 64
metric = "l2"
quantization = "int8"
rescore = true

[embed]
provider = "model2vec"
path = "models/m2v"
""",
}

WORDS = (
    "red blue green black white small large light heavy soft hard warm cold "
    "cotton wool leather steel wooden glass paper plastic silver golden "
    "shirt jacket boots lamp table chair kettle mug pan knife bottle bag "
    "backpack tent rope lantern camera phone cable charger speaker "
    "headphones book notebook pencil brush paint garden hose shovel seeds"
).split()
CATEGORIES = ["clothing", "home", "kitchen", "outdoor", "electronics", "office", "garden"]


def write_records(path, n, seed=1):
    rng = random.Random(seed)
    with open(path, "w") as f:
        for i in range(n):
            title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 6)))
            record = {
                "sku": f"sku-{i:07d}",
                "title": title,
                "category": rng.choice(CATEGORIES),
                "price": round(rng.uniform(1, 500), 2),
            }
            f.write(json.dumps(record) + "\n")


def timed(cmd, cwd, verbose):
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *map(str, cmd)], cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed: {cmd}\n{p.stdout}\n{p.stderr}")
    if verbose:
        print(p.stdout, file=sys.stderr)
    rss = int(p.stderr.strip().splitlines()[-1])
    return dt, rss / 1024, p.stdout


def built(report):
    return sorted(r["name"] for r in json.loads(report)["results"] if r["status"] == "built")


def texts_sent(report):
    return sum(
        int(r.get("stats", {}).get("texts_sent", 0))
        for r in json.loads(report)["results"]
        if r["status"] == "built"
    )


def edit_one(path):
    """Change the title of the middle record, in place, line by line."""
    tmp = path.with_suffix(".tmp")
    lines = sum(1 for _ in open(path))
    middle = lines // 2
    with open(path) as src, open(tmp, "w") as dst:
        for i, line in enumerate(src):
            if i == middle:
                r = json.loads(line)
                r["title"] = "an edited title for the benchmark"
                line = json.dumps(r) + "\n"
            dst.write(line)
    tmp.replace(path)


def bench(n, verbose):
    work = REPO / "bench" / "out" / f"records-{n}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "models.d").mkdir(parents=True)
    (work / "data").mkdir()
    (work / "pipeline.toml").write_text(PIPELINE)
    for name, text in MODELS.items():
        (work / "models.d" / f"{name}.toml").write_text(text)
    shutil.copytree(MODEL, work / "models" / "m2v")
    write_records(work / "data" / "products.jsonl", n)

    full_s, full_rss, out = timed([PIPE, "build", "--json"], work, verbose)
    full_sent = texts_sent(out)
    edit_one(work / "data" / "products.jsonl")
    edit_s, edit_rss, out = timed([PIPE, "build", "--json"], work, verbose)
    edit_sent, edit_built = texts_sent(out), built(out)
    noop_s, noop_rss, out = timed([PIPE, "build", "--json"], work, verbose)
    return {
        "n": n,
        "full_s": full_s,
        "full_rss": full_rss,
        "full_sent": full_sent,
        "edit_s": edit_s,
        "edit_rss": edit_rss,
        "edit_sent": edit_sent,
        "edit_built": len(edit_built),
        "noop_s": noop_s,
        "noop_rss": noop_rss,
        "noop_built": len(built(out)),
        "db_mb": sum(p.stat().st_size for p in (work / "public").rglob("*.db")) / 1e6,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if not (MODEL / "model.safetensors").is_file():
        sys.exit(f"no model at {MODEL}: run .ci/deps")
    if not PIPE.is_file():
        sys.exit(f"no {PIPE}: run cargo build --release")
    rows = [bench(int(s), args.verbose) for s in args.sizes.split(",")]
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores; 2 models, model2vec provider, tokenlearn-static-model (64 d), per-model layout\n")
    print("| records | full build (texts embedded) | peak RSS | one-record edit (texts sent, targets built) | peak RSS | no-op (targets built) | peak RSS | databases |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['n']:,} | {r['full_s']:.1f} s ({r['full_sent']:,}) | {r['full_rss']:.0f} MB "
            f"| {r['edit_s']:.1f} s ({r['edit_sent']}, {r['edit_built']}) | {r['edit_rss']:.0f} MB "
            f"| {r['noop_s']:.2f} s ({r['noop_built']}) | {r['noop_rss']:.0f} MB | {r['db_mb']:.0f} MB |"
        )


if __name__ == "__main__":
    main()
