#!/usr/bin/env python3
"""Benchmark reading records: is a big records file streamed, or held?

    cargo build --release && python3 bench/records_read.py --records 200000 --text 2000

For each format (JSON Lines, CSV, a JSON array) it writes a file of RECORDS
records, each with a TEXT-byte plot, into a project under
bench/out/records-read (gitignored) with one records-db target and one
command-provider model, then runs `pipe explain films-db-embeddings@bow`:
that reads every record, makes every text and its cache key (what a build
does before it sends anything), and sends nothing. Peak memory is GNU
time's %M of the pipe process. A reader that held the records would need
at least the file's size; a streaming one needs what is kept per record
(its id and key) plus a few chunks of texts. Writes a Markdown table to
stdout.
"""
import argparse
import csv
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PIPELINE = """[inputs]
films = "data/{file}"

[targets.films-db]
kind = "records-db"
records = "films"
id = "film"
columns = {{ title = "text" }}
text = "{{{{ title }}}}: {{{{ plot }}}}"
"""

MODEL = """id = "bow"
name = "Bag of words"
dimensions = 16
embeddings = "data/unused.db"

[embed]
provider = "command"
command = ["python3", "scripts/embed-bow.py", "--dimensions", "16"]
"""

WORDS = "heist paris storm sea night city river train letter garden winter mirror".split()


def plot(i, size):
    words = []
    n = 0
    k = i
    while n < size:
        w = WORDS[k % len(WORDS)]
        words.append(w)
        n += len(w) + 1
        k = k * 31 + 7
    return " ".join(words)[:size]


def write(path, fmt, records, size):
    with open(path, "w", newline="") as f:
        if fmt == "csv":
            w = csv.writer(f)
            w.writerow(["film", "title", "plot"])
            for i in range(records):
                w.writerow([f"f{i}", f"Film {i}", plot(i, size)])
        elif fmt == "jsonl":
            for i in range(records):
                f.write(json.dumps({"film": f"f{i}", "title": f"Film {i}", "plot": plot(i, size)}) + "\n")
        else:
            f.write("[")
            for i in range(records):
                if i:
                    f.write(",\n")
                f.write(json.dumps({"film": f"f{i}", "title": f"Film {i}", "plot": plot(i, size)}))
            f.write("]\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--text", type=int, default=2000, help="bytes of plot per record")
    ap.add_argument("--pipe", default=str(REPO / "target" / "release" / "pipe"))
    args = ap.parse_args()
    pipe = Path(args.pipe).resolve()
    if not pipe.exists():
        sys.exit(f"{pipe} is missing: run cargo build --release (or pass --pipe)")
    out = REPO / "bench" / "out" / "records-read"
    rows = []
    for fmt, name in [("jsonl", "films.jsonl"), ("csv", "films.csv"), ("json", "films.json")]:
        shutil.rmtree(out, ignore_errors=True)
        (out / "data").mkdir(parents=True)
        (out / "models.d").mkdir()
        (out / "scripts").mkdir()
        shutil.copy(REPO / "scripts" / "embed-bow.py", out / "scripts" / "embed-bow.py")
        (out / "pipeline.toml").write_text(PIPELINE.format(file=name))
        (out / "models.d" / "bow.toml").write_text(MODEL)
        write(out / "data" / name, fmt, args.records, args.text)
        size = (out / "data" / name).stat().st_size
        t0 = time.perf_counter()
        p = subprocess.run(
            ["/usr/bin/time", "-f", "%M", str(pipe), "explain", "films-db-embeddings@bow"],
            cwd=out, capture_output=True, text=True,
        )
        dt = time.perf_counter() - t0
        if p.returncode != 0 or f"{args.records} records:" not in p.stdout:
            sys.exit(f"failed ({fmt}):\n{p.stdout}\n{p.stderr}")
        rss = int(p.stderr.strip().splitlines()[-1])
        rows.append((fmt, size, rss, dt))
    shutil.rmtree(out, ignore_errors=True)
    print(f"{args.records} records of ~{args.text} bytes, `pipe explain` (every text and key made, nothing sent); "
          f"{platform.machine()}, {pipe.name} at {pipe.parent.name}\n")
    print("| format | file | peak RSS | time |")
    print("|---|---:|---:|---:|")
    for fmt, size, rss, dt in rows:
        print(f"| {fmt} | {size / 1e6:.0f} MB | {rss / 1024:.0f} MB | {dt:.1f} s |")


if __name__ == "__main__":
    main()
