#!/usr/bin/env python3
"""Hold N idle keep-alive client connections to a proxy, for bench/run.sh.

Opens N connections to HOST:PORT one after the other, sends one POST (PATH, the body of FILE)
on each and reads its whole answer (which must be 2xx and keep the connection open), so that
the proxy holds N established keep-alive client connections that each served one request and
at most one request is in flight at any time (the proxy's upstream connections stay few).
Then writes "ok=N failed=N seconds=S" to READY_FILE and holds the connections, idle, until it
gets SIGTERM/SIGINT or HOLD seconds pass, and exits (closing them).

Exit status: 0 when every connection was opened and answered, 1 otherwise.
"""
import argparse
import os
import resource
import signal
import socket
import sys
import time


def read_answer(sock):
    """Reads one HTTP/1.1 answer; returns (status, keeps_alive)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the answer's header")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    chunked = False
    keep_alive = True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        value = value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection" and "close" in value:
            keep_alive = False
    if chunked:
        while not rest.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed in a chunked body")
            rest += chunk
    elif status not in (204, 304):
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed in the body")
            rest += chunk
    return status, keep_alive


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--path", required=True)
    ap.add_argument("--body", required=True, help="file whose content is posted")
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--hold", type=float, default=120.0, help="seconds to hold at most")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.n + 64:
        want = args.n + 64 if hard == resource.RLIM_INFINITY else min(hard, args.n + 64)
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        if want < args.n + 64:
            sys.exit(f"idle_conns: open-file limit {hard} is too low for {args.n} connections")

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    with open(args.body, "rb") as f:
        body = f.read()
    request = (
        f"POST {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body

    started = time.monotonic()
    socks = []
    failed = 0
    first_error = None
    for _ in range(args.n):
        if stop:
            break
        try:
            s = socket.create_connection((args.host, args.port), timeout=10)
            s.sendall(request)
            status, keep_alive = read_answer(s)
            if not (200 <= status < 300) or not keep_alive:
                raise ConnectionError(f"answer {status}, keep-alive {keep_alive}")
            socks.append(s)
        except (OSError, ValueError, IndexError) as e:
            failed += 1
            first_error = first_error or repr(e)
            try:
                s.close()
            except Exception:
                pass
    seconds = time.monotonic() - started
    with open(args.ready_file + ".tmp", "w") as f:
        f.write(f"ok={len(socks)} failed={failed} seconds={seconds:.2f}"
                + (f" first_error={first_error!r}" if first_error else "") + "\n")
    # rename: run.sh never reads a half-written file
    os.replace(args.ready_file + ".tmp", args.ready_file)

    deadline = time.monotonic() + args.hold
    while not stop and time.monotonic() < deadline:
        time.sleep(0.1)
    for s in socks:
        s.close()
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
