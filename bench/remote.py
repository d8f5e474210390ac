#!/usr/bin/env python3
"""Benchmark the remote cache against a local nginx with WebDAV PUT: the
cost of uploading on the first machine, and a fresh copy of the project
installing every target from the cache, against a local full build.

    cargo build --release && python3 bench/remote.py --sizes 30000,100000
    python3 bench/remote.py --vectors --sizes 30000    # per-record vectors

Each size gets bench/out/remote-<size>/ (gitignored): data from `pipe sample`
(seed 1), an nginx on 127.0.0.1 serving a directory of its own, and three
copies of the project: `local` (full build, no cache), `first` (full build
that uploads), `second` (a fresh copy that downloads everything). Times are
medians of --repeat runs, each from nothing (no outputs, no .pipe/). Needs
Debian's nginx-light (`.ci/deps` installs it). `--work /dev/shm` puts the
projects and the server's store in memory, which takes this machine's disk
(whose speed varied tenfold between runs here) out of the figures.
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

# bench/embeddings.py's project (its manifest, its model file, the model2vec
# test model), which --vectors builds and shares. The script's folder is
# first on sys.path (`python3 bench/remote.py`).
from embeddings import MODEL, MODEL_FILE, PIPELINE

REPO = Path(__file__).resolve().parent.parent
PIPE = REPO / "target" / "release" / "pipe"
NGINX = os.environ.get("PIPE_NGINX", "/usr/sbin/nginx")

NGINX_CONF = """daemon off;
master_process off;
worker_processes 1;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  client_max_body_size 0;
  server {{
    listen 127.0.0.1:{port};
    root {d}/store;
    location / {{ dav_methods PUT; create_full_put_path on; }}
  }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nginx(d):
    (d / "store").mkdir(parents=True, exist_ok=True)
    port = free_port()
    (d / "nginx.conf").write_text(NGINX_CONF.format(d=d, port=port))
    proc = subprocess.Popen([NGINX, "-c", d / "nginx.conf", "-p", d], stdout=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, f"http://127.0.0.1:{port}/pipe"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("nginx did not start")


def project(work, name, data):
    p = work / name
    if p.exists():
        shutil.rmtree(p)
    p.mkdir(parents=True)
    shutil.copy(REPO / "pipeline.toml", p)
    shutil.copytree(REPO / "models.d", p / "models.d")
    shutil.copytree(data, p / "data")
    return p


def reset(p):
    for d in ("public", ".pipe"):
        shutil.rmtree(p / d, ignore_errors=True)
    (p / "pipe.lock").unlink(missing_ok=True)
    # Let the file system finish the deletion before the next timed build:
    # otherwise whichever build comes next pays for 30,000 unlinks.
    os.sync()
    time.sleep(1)


def timed(cmd, cwd, env):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{r.stderr}")
    return dt, r


def tree_bytes(path):
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def bench(n, repeat, base):
    work = base / f"remote-{n}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    gen = work / "gen"
    gen.mkdir()
    shutil.copy(REPO / "pipeline.toml", gen)
    shutil.copytree(REPO / "models.d", gen / "models.d")
    subprocess.run([PIPE, "sample", "--movies", str(n), "--seed", "1", "--dir", gen, "-q"], cwd=gen, check=True)
    env = dict(os.environ, SOURCE_DATE_EPOCH="1767225600")
    env.pop("PIPE_REMOTE_CACHE", None)
    local = project(work, "local", gen / "data")
    first = project(work, "first", gen / "data")
    second = project(work, "second", gen / "data")
    nginx, url = start_nginx(work / "nginx")
    try:
        # Warm-up (page cache, the kernel writing the generated data back).
        timed([PIPE, "build", "-q", "--no-remote-cache"], local, env)
        t_local, t_first, t_second = [], [], []
        for _ in range(repeat):
            reset(local)
            t_local.append(timed([PIPE, "build", "-q", "--no-remote-cache"], local, env)[0])
            # Uploads from nothing: an empty store each time.
            shutil.rmtree(work / "nginx" / "store" / "pipe", ignore_errors=True)
            reset(first)
            t_first.append(timed([PIPE, "build", "-q", "--remote-cache", url], first, env)[0])
            reset(second)
            dt, r = timed([PIPE, "build", "--json", "--remote-cache", url], second, env)
            t_second.append(dt)
        import json

        report = json.loads(r.stdout)
        statuses = sorted({x["status"] for x in report["results"]})
        if statuses != ["downloaded"]:
            sys.exit(f"the fresh copy did not download every target: {statuses}")
        stored = tree_bytes(work / "nginx" / "store")
        out = tree_bytes(second / "public")
    finally:
        nginx.kill()
        nginx.wait()
    m = statistics.median
    return {
        "movies": n,
        "local": m(t_local),
        "first": m(t_first),
        "second": m(t_second),
        "stored": stored,
        "outputs": out,
        "downloaded": report["remote"]["downloadedBytes"],
    }


def embed_project(work, name, movies_json):
    p = work / name
    shutil.rmtree(p, ignore_errors=True)
    (p / "models.d").mkdir(parents=True)
    (p / "data").mkdir()
    (p / "pipeline.toml").write_text(PIPELINE)
    (p / "models.d" / "m2v.toml").write_text(MODEL_FILE)
    shutil.copytree(MODEL, p / "models" / "m2v")
    shutil.copy(movies_json, p / "data" / "movies.json")
    (p / "data" / "collections.json").write_text("{}")
    return p


def edit_one_plot(p):
    import json

    movies = json.loads((p / "data" / "movies.json").read_text(encoding="utf-8"))
    key = next(k for k in movies if not k.startswith("_"))
    movies[key]["metadata"] = dict(movies[key].get("metadata") or {}, Plot="An edited plot for the benchmark.")
    (p / "data" / "movies.json").write_text(json.dumps(movies, ensure_ascii=False, indent=2), encoding="utf-8")


def bench_vectors(n, repeat, base):
    """A second machine whose movies.json has one edit: no target entry
    fits, so without the per-record vectors it would embed every movie."""
    import json

    work = base / f"remote-vectors-{n}"
    shutil.rmtree(work, ignore_errors=True)
    gen = work / "gen"
    gen.mkdir(parents=True)
    subprocess.run([PIPE, "sample", "--movies", str(n), "--seed", "1", "--dir", gen, "-q"], cwd=gen, check=True)
    env = dict(os.environ, SOURCE_DATE_EPOCH="1767225600")
    env.pop("PIPE_REMOTE_CACHE", None)
    nginx, url = start_nginx(work / "nginx")
    try:
        first = embed_project(work, "first", gen / "data" / "movies.json")
        timed([PIPE, "build", "-q", "--remote-cache", url], first, env)
        t_local, t_shared = [], []
        for _ in range(repeat):
            local = embed_project(work, "local", gen / "data" / "movies.json")
            edit_one_plot(local)
            t_local.append(timed([PIPE, "build", "-q", "--no-remote-cache"], local, env)[0])
            second = embed_project(work, "second", gen / "data" / "movies.json")
            edit_one_plot(second)
            # Read-only: every repeat finds the cache as the first left it.
            dt, r = timed([PIPE, "build", "--json", "--remote-cache", url, "--remote-cache-read-only"], second, env)
            t_shared.append(dt)
        report = json.loads(r.stdout)
        emb = next(x for x in report["results"] if x["name"] == "embeddings@m2v")
        sent = int(emb["stats"]["texts_sent"])
        shared = int(emb["stats"].get("shared", 0))
    finally:
        nginx.kill()
        nginx.wait()
    m = statistics.median
    return {"movies": n, "local": m(t_local), "shared": m(t_shared), "sent": sent, "taken": shared}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="30000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--work",
        default=str(REPO / "bench" / "out"),
        help="where the projects go (e.g. /dev/shm: measures pipe, not this machine's disk)",
    )
    ap.add_argument(
        "--vectors",
        action="store_true",
        help="instead: a second machine with one edited movie and a model2vec model, per-record vectors from the cache",
    )
    args = ap.parse_args()
    if not PIPE.exists():
        sys.exit("build first: cargo build --release")
    if args.vectors:
        if not (MODEL / "model.safetensors").is_file():
            sys.exit(f"no model at {MODEL}: run .ci/deps")
        rows = [bench_vectors(int(n), args.repeat, Path(args.work)) for n in args.sizes.split(",")]
        print("| movies | fresh machine, one edit, no cache | the same with the cache | texts sent | vectors taken from the cache |")
        print("|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['movies']:,} | {r['local']:.2f} s | {r['shared']:.2f} s | {r['sent']} | {r['taken']:,} |")
        return
    rows = [bench(int(n), args.repeat, Path(args.work)) for n in args.sizes.split(",")]
    print("| movies | local full build | first machine: build + upload | upload overhead | fresh copy: download all | download / local | stored on the server | outputs |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['movies']:,} | {r['local']:.2f} s | {r['first']:.2f} s | {100 * (r['first'] / r['local'] - 1):+.0f}% "
            f"| {r['second']:.2f} s | {100 * r['second'] / r['local']:.0f}% | {r['stored'] / 1e6:.1f} MB | {r['outputs'] / 1e6:.1f} MB |"
        )


if __name__ == "__main__":
    main()
