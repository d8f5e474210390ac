#!/usr/bin/env python3
"""A small embedder for pipe's command provider: hashed bag of words.

Reads JSON lines {"id": ..., "text": ...} on stdin and answers each with
{"id": ..., "embedding": [...]} on stdout: every lower-cased word adds +1
or -1 (chosen by its blake2b hash) to one of DIMENSIONS components, and
the vector is L2-normalised. Texts that share words get nearby vectors, so
nearest neighbours mean something; it needs nothing but the standard
library. Used by the tests and as the README's command-provider example.

    scripts/embed-bow.py --dimensions 64 [--log FILE] [--stall-after N] [--exit-after N]

Each option may also come from the environment (EMBED_BOW_LOG,
EMBED_BOW_STALL_AFTER, EMBED_BOW_EXIT_AFTER), so that a test can change
them without changing the model file's command (which is part of every
vector's cache key). --log appends one line per text received ("<id>\\t<first 60 characters>")
so a test can count what was sent; --stall-after stops answering after N
texts (a test kills the build meanwhile); --exit-after exits with status 3
after N texts (a provider failing midway).
"""

import argparse
import hashlib
import json
import math
import os
import re
import sys
import time

WORD = re.compile(r"\w+", re.UNICODE)


def embed(text, dims):
    v = [0.0] * dims
    for w in WORD.findall(text.lower()):
        h = hashlib.blake2b(w.encode("utf-8"), digest_size=8).digest()
        n = int.from_bytes(h, "little")
        v[n % dims] += 1.0 if (n >> 32) & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v] if norm > 0 else v


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dimensions", type=int, required=True)
    env = os.environ.get
    p.add_argument("--log", default=env("EMBED_BOW_LOG"))
    p.add_argument("--stall-after", type=int, default=env("EMBED_BOW_STALL_AFTER"))
    p.add_argument("--exit-after", type=int, default=env("EMBED_BOW_EXIT_AFTER"))
    a = p.parse_args()
    log = open(a.log, "a", encoding="utf-8") if a.log else None
    answered = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if a.exit_after is not None and answered >= a.exit_after:
            print(f"embed-bow: exiting after {answered} texts as asked", file=sys.stderr)
            sys.exit(3)
        if a.stall_after is not None and answered >= a.stall_after:
            # Until pipe is gone (killed by the test): then exit too.
            parent = os.getppid()
            while os.getppid() == parent:
                time.sleep(0.05)
            sys.exit(0)
        if log:
            log.write(f"{req['id']}\t{req['text'][:60]!r}\n")
            log.flush()
        out = {"id": req["id"], "embedding": embed(req["text"], a.dimensions)}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
        answered += 1


if __name__ == "__main__":
    main()
