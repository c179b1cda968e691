#!/usr/bin/env python3
"""Starts N sessions through a gateway (bench/run.sh's session store cells) and writes their
events paths, one a line. Each sessionStart carries X-Bench-Unique-Sid, so the bench upstream
names a new session each time; one keep-alive connection, so this takes a second or two."""

import argparse
import http.client
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--body", required=True, help="the sessionStart fixture")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    with open(args.body, "rb") as f:
        body = f.read()
    conn = http.client.HTTPConnection(args.host, args.port, timeout=10)
    paths = []
    for _ in range(args.n):
        conn.request("POST", "/api/v1/sessions", body,
                     {"Content-Type": "application/json", "X-Bench-Unique-Sid": "1"})
        r = conn.getresponse()
        r.read()
        location = r.getheader("Location") or ""
        if r.status != 201 or not location.startswith("/api/v1/sessions/"):
            print(f"start_sessions: {r.status} {location!r}", file=sys.stderr)
            return 1
        paths.append(location + "/events")
    if len(set(paths)) != len(paths):
        print("start_sessions: the upstream named one session twice", file=sys.stderr)
        return 1
    with open(args.out, "w") as f:
        f.write("\n".join(paths) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
