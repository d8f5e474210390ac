#!/usr/bin/env python3
"""Benchmark the embeddings stage with the built-in model2vec provider, end
to end through the binary: a full embedding of every movie (texts/s), the
build after a one-movie edit (exactly one text sent), and peak memory.

    cargo build --release && bash .ci/deps && python3 bench/embeddings.py --sizes 30000,100000

A/B: `--baseline OTHER/target/release/pipe` runs the same steps with another
build, side by side (baseline then this one, per size), and checks that both
wrote the same embeddings file, byte for byte.

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

# The manifest of the embeddings tests too (an embeddings target and a
# movies-db target over it).
PIPELINE = (REPO / "tests" / "fixtures" / "embeddings" / "pipeline.toml").read_text()

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
    p = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", *map(str, cmd)], cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed: {cmd}\n{p.stdout}\n{p.stderr}")
    rss, user, system = p.stderr.strip().splitlines()[-1].split()
    CPU[0] = float(user) + float(system)
    return dt, int(rss), p.stdout


# CPU seconds (user + system) of the last `timed` command: on a shared
# machine wall time says more about the other jobs than about pipe.
CPU = [0.0]


def result(report, name):
    return next(r for r in json.loads(report)["results"] if r["name"] == name)


def bench(n, pipe=PIPE, tag="this"):
    PIPE = pipe
    work = REPO / "bench" / "out" / f"embed-{n}-{tag}"
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
    full_cpu = CPU[0]
    r = result(out, "embeddings@m2v")
    sent = int(r["stats"]["texts_sent"])
    stage_s = r["millis"] / 1000
    db_s, _, _ = timed([PIPE, "build", "--json"], work)
    full_bytes = (work / "data" / "embeddings-m2v-movies.db").read_bytes()

    # "Today's edit": the same project where the embeddings file is an
    # input (no [embed]), as before the stage existed; the same edit.
    today = work.parent / f"embed-{n}-{tag}-today"
    shutil.rmtree(today, ignore_errors=True)
    (today / "models.d").mkdir(parents=True)
    shutil.copytree(work / "data", today / "data")
    (today / "pipeline.toml").write_text(PIPELINE.split("[targets.embeddings]")[0] + PIPELINE.split('kind = "embeddings"\n')[1])
    (today / "models.d" / "m2v.toml").write_text(MODEL_FILE.split("[embed]")[0])
    timed([PIPE, "build", "--json"], today)

    for project in (work, today):
        movies = json.loads((project / "data" / "movies.json").read_text())
        key = next(k for k in movies if not k.startswith("_"))
        movies[key].setdefault("metadata", {})
        movies[key]["metadata"] = dict(movies[key]["metadata"] or {}, Plot="An edited plot for the benchmark.")
        (project / "data" / "movies.json").write_text(json.dumps(movies, ensure_ascii=False, indent=2), encoding="utf-8")
    today_s, _, _ = timed([PIPE, "build", "--json"], today)
    today_cpu = CPU[0]
    edit_s, edit_rss, out = timed([PIPE, "build", "--json"], work)
    edit_cpu = CPU[0]
    e = result(out, "embeddings@m2v")
    shutil.rmtree(today, ignore_errors=True)
    return {
        "tag": tag,
        "file": work / "data" / "embeddings-m2v-movies.db",
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
        "full_bytes": full_bytes,
        "full_cpu": full_cpu,
        "edit_cpu": edit_cpu,
        "today_s": today_s,
        "today_cpu": today_cpu,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="30000,100000")
    ap.add_argument("--baseline", help="another pipe binary to measure side by side")
    args = ap.parse_args()
    if not (MODEL / "model.safetensors").is_file():
        sys.exit(f"no model at {MODEL}: run .ci/deps")
    print(f"load before: {os.getloadavg()}", file=sys.stderr)
    rows = []
    for s in args.sizes.split(","):
        if args.baseline:
            rows.append(bench(int(s), Path(args.baseline), "baseline"))
        rows.append(bench(int(s)))
        if args.baseline:
            a, b = rows[-2], rows[-1]
            same = a["full_bytes"] == b["full_bytes"]
            same_edit = a["file"].read_bytes() == b["file"].read_bytes()
            print(f"{s}: embeddings files identical: full {same}, after the edit {same_edit}", file=sys.stderr)
            if not (same and same_edit):
                sys.exit("the two builds wrote different embeddings files")
    print(f"load after: {os.getloadavg()}", file=sys.stderr)
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores; model2vec provider, tokenlearn-static-model (64 d)\n")
    print("| build | movies | texts embedded | embeddings stage | texts/s | whole command (peak RSS) | its CPU time | texts per CPU-second | then movies-db | one-movie edit: texts sent | edit: embeddings stage | edit: whole build (peak RSS) | edit: CPU time | today's edit (no [embed]): whole build (CPU) | edit minus today's |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['tag']} | {r['n']:,} | {r['sent']:,} | {r['stage_s']:.2f} s | {r['texts_per_s']:,.0f} | {r['full_s']:.2f} s ({r['full_rss_mb']:.0f} MB) | {r['full_cpu']:.2f} s | {r['sent'] / r['full_cpu'] if r['full_cpu'] else 0:,.0f} | {r['db_s']:.2f} s | {r['edit_sent']} | {r['edit_stage_s']:.2f} s | {r['edit_s']:.2f} s ({r['edit_rss_mb']:.0f} MB) | {r['edit_cpu']:.2f} s | {r['today_s']:.2f} s ({r['today_cpu']:.2f} s) | {r['edit_s'] - r['today_s']:+.2f} s |")


if __name__ == "__main__":
    main()
