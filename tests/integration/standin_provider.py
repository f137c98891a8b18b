#!/usr/bin/env python3
"""A stand-in model provider that rate-limits, for the fleet-limits test.

Listens on 127.0.0.1 (a free port, written to --port-file). POST
/v1/messages is "a model call": while fewer than `capacity` calls are in
flight it holds the call for `hold_ms` and answers 200; otherwise it answers
429 at once with `retry-after: <retry_after>` (seconds), the way a provider
over its quota does. POST /control sets capacity / hold_ms / retry_after;
GET /stats returns counts and the most calls it ever served at once.
"""
import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
state = {"capacity": 4, "hold_ms": 100, "retry_after": 1.0,
         "inflight": 0, "max_inflight": 0, "ok": 0, "limited": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("content-length", "0"))
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        if self.path == "/stats":
            with lock:
                self.reply(200, dict(state))
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        raw = self.body()
        if self.path == "/control":
            req = json.loads(raw or b"{}")
            with lock:
                for k in ("capacity", "hold_ms", "retry_after"):
                    if k in req:
                        state[k] = req[k]
                self.reply(200, dict(state))
            return
        if self.path != "/v1/messages":
            self.reply(404, {"error": "not found"})
            return
        with lock:
            if state["inflight"] >= state["capacity"]:
                state["limited"] += 1
                ra = state["retry_after"]
                admitted = False
            else:
                state["inflight"] += 1
                state["max_inflight"] = max(state["max_inflight"], state["inflight"])
                hold = state["hold_ms"] / 1000.0
                admitted = True
        if not admitted:
            self.reply(429, {"type": "error", "error": {"type": "rate_limit_error"}},
                       {"retry-after": str(ra)})
            return
        time.sleep(hold)
        with lock:
            state["inflight"] -= 1
            state["ok"] += 1
        self.reply(200, {"type": "message", "content": []})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(args.port_file + ".tmp", args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
