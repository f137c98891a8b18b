#!/usr/bin/env python3
"""A stand-in model provider that rate-limits, for the fleet-limits test.

Listens on 127.0.0.1 (a free port, written to --port-file). POST
/v1/messages is "a model call": while fewer than `capacity` calls are in
flight it holds the call for `hold_ms` and answers 200; otherwise it answers
429 at once with `retry-after: <retry_after>` (seconds), the way a provider
over its quota does. POST /control sets capacity / hold_ms / retry_after;
GET /stats returns counts and the most calls it ever served at once.

With --usage (the gateway's usage meter tests) POST /v1/messages answers as
the Messages API does, with a `usage` the stand-in makes up per call (call n:
input 100+n, cache write 7n, cache read 1000+n, output 20+3n): one JSON
message, or, when the request asks for "stream", server-sent events in a
chunked body (message_start with the input counts, text deltas that mention
"usage", two cumulative message_delta). A request's "aq_cut" cuts the stream
short, closing the connection: "after_start" (after message_start) or
"after_delta" (after the first message_delta). The totals of the usage it
actually sent, per model, and the accept-encoding of every request go to
--stats-file (JSON) after each call. --cert/--key: HTTPS; --host: the address.
"""
import argparse
import json
import os
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
state = {"capacity": 4, "hold_ms": 100, "retry_after": 1.0,
         "inflight": 0, "max_inflight": 0, "ok": 0, "limited": 0}
USAGE = {"on": False, "stats_file": None, "calls": 0, "sent": {}, "accept_encoding": []}


def note_sent(model, u):
    """Adds usage the stand-in sent to its totals (under the lock)."""
    t = USAGE["sent"].setdefault(model, {"requests": 0, "input_tokens": 0, "output_tokens": 0,
                                         "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
    t["requests"] += 1
    for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
        t[k] += u.get(k, 0)


def write_stats():
    if USAGE["stats_file"]:
        tmp = USAGE["stats_file"] + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"calls": USAGE["calls"], "sent": USAGE["sent"],
                       "accept_encoding": USAGE["accept_encoding"]}, f)
        os.rename(tmp, USAGE["stats_file"])


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
        if self.path.split("?")[0] != "/v1/messages":
            self.reply(404, {"error": "not found"})
            return
        if USAGE["on"]:
            self.answer_with_usage(json.loads(raw or b"{}"))
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


    def answer_with_usage(self, req):
        with lock:
            USAGE["calls"] += 1
            n = USAGE["calls"]
            USAGE["accept_encoding"].append(", ".join(self.headers.get_all("accept-encoding") or []))
        u = {"input_tokens": 100 + n, "cache_creation_input_tokens": 7 * n,
             "cache_read_input_tokens": 1000 + n, "output_tokens": 20 + 3 * n}
        if not req.get("stream"):
            model = "claude-standin-json"
            with lock:
                note_sent(model, u)
                write_stats()
            self.reply(200, {"id": "msg_%d" % n, "type": "message", "role": "assistant", "model": model,
                             "content": [{"type": "text", "text": "a \"usage\": {\"input_tokens\": 1}"}],
                             "stop_reason": "end_turn", "usage": u})
            return
        model = "claude-standin-stream"
        cut = req.get("aq_cut", "")
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

        def event(name, data):
            body = ("event: %s\ndata: %s\n\n" % (name, json.dumps(data))).encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(body), body))
            self.wfile.flush()

        start = dict(u, output_tokens=1)
        event("message_start", {"type": "message_start", "message": {
            "id": "msg_%d" % n, "type": "message", "role": "assistant", "model": model,
            "content": [], "usage": start}})
        sent = start
        if cut != "after_start":
            event("ping", {"type": "ping"})
            event("content_block_start", {"type": "content_block_start", "index": 0,
                                          "content_block": {"type": "text", "text": ""}})
            for i in range(20):
                event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
                    "type": "text_delta", "text": "part %d \"usage\":{\"output_tokens\":99999}\n" % i}})
            event("content_block_stop", {"type": "content_block_stop", "index": 0})
            half = u["output_tokens"] // 2
            event("message_delta", {"type": "message_delta", "delta": {"stop_reason": None},
                                    "usage": {"output_tokens": half}})
            sent = dict(start, output_tokens=half)
            if cut != "after_delta":
                event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                        "usage": {"output_tokens": u["output_tokens"]}})
                event("message_stop", {"type": "message_stop"})
                self.wfile.write(b"0\r\n\r\n")
                sent = u
        with lock:
            note_sent(model, sent)
            write_stats()
        if cut:
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--usage", action="store_true")
    ap.add_argument("--stats-file")
    args = ap.parse_args()
    USAGE["on"] = args.usage
    USAGE["stats_file"] = args.stats_file
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
