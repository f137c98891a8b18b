#!/usr/bin/env python3
"""A scripted stand-in for the Anthropic Messages API, for the real-agent test
(tests/agent_real/agent_real_test.cc). Run inside the network namespace the
test creates (ip netns exec NS python3 messages_server.py ...), it listens on
--port (HTTPS with --cert/--key, a certificate from the test's CA; plain HTTP
without them) and appends one JSON line per event to --log: every request's
method, path and credential headers (x-api-key, authorization), the turn it
answered, and the tool results Claude Code sent back.

POST /v1/messages (streamed as server-sent events when the request asks for
"stream", else one JSON message) plays one scripted conversation. A request
whose `tools` offer Bash and Write is the agent's conversation:
  1. no tool result yet: a Bash tool_use that prints the agent's environment
     and that of every process in the container (the test checks that the
     real key is nowhere in it);
  2. after the Bash result: a Write tool_use of a valid assessment (the
     dataset name and the output path are taken from the prompt);
  3. after the Write result: end_turn with a short text.
With --gate FILE, turn 1 is held until FILE exists. Any other /v1/messages request (a side query without those tools) gets a short
end_turn text; /v1/messages/count_tokens gets a count; every other path gets
200 {} (and is logged, so the test can report what Claude Code asked for).
"""
import argparse
import json
import os
import re
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
LOG = None
GATE = None
counter = [0]

ENV_TOOL_ID = "toolu_aq_01_env"
WRITE_TOOL_ID = "toolu_aq_02_write"
ENV_COMMAND = (
    "echo AQ-ENV-BEGIN; env; echo AQ-ENV-END; "
    "for p in /proc/[0-9]*; do "
    "echo \"AQ-PROC $p $(tr '\\0' ' ' < $p/cmdline 2>/dev/null)\"; "
    "tr '\\0' '\\n' < $p/environ 2>/dev/null; done; "
    "echo AQ-PROC-END; ls -la /run/secrets 2>&1 | head -3; ls /run/assessq 2>&1"
)


def log(**kv):
    with lock:
        LOG.write(json.dumps(kv, ensure_ascii=False) + "\n")
        LOG.flush()


def next_id(prefix):
    with lock:
        counter[0] += 1
        return "%s_aq_%04d" % (prefix, counter[0])


def text_of(content):
    """The text of a message's content (a string or a list of blocks)."""
    if isinstance(content, str):
        return content
    out = []
    for b in content or []:
        if isinstance(b, dict):
            if b.get("type") == "text":
                out.append(b.get("text", ""))
            elif b.get("type") == "tool_result":
                out.append(text_of(b.get("content")))
    return "\n".join(out)


def tool_results(messages):
    """tool_use_id -> (text, is_error) of every tool_result in the request."""
    out = {}
    for m in messages:
        if m.get("role") != "user" or isinstance(m.get("content"), str):
            continue
        for b in m.get("content") or []:
            if isinstance(b, dict) and b.get("type") == "tool_result":
                out[b.get("tool_use_id")] = (text_of(b.get("content")), bool(b.get("is_error")))
    return out


def assessment(name):
    return {
        "الاسم": name,
        "الاسم_الأصلي": name,
        "درجة_الجودة": 55,
        "تقدير_الجودة": "مقبول",
        "الملخص": "تقييم آلي أولي لمجموعة البيانات بناءً على بياناتها الوصفية وحدها، "
                  "دون تحميل عينات منها.",
        "فحص_البيانات": {
            "الطريقة_المستخدمة": "metadata_only",
            "عدد_العينات_المفحوصة": 0,
            "معاينة_العينات": [],
            "مشاكل_مكتشفة": ["لم تُحمَّل أي عينة"],
            "البيانات_تطابق_الوصف": True,
        },
        "نقاط_القوة": ["وصف واضح للمحتوى"],
        "نقاط_الضعف": ["لم تُفحص البيانات نفسها"],
        "الاستخدامات_الموصى_بها": ["البحث في معالجة اللغة العربية"],
        "تفصيل_الجودة": {
            "سهولة_الوصول": 50, "التوثيق": 60, "السلامة_الأخلاقية": 60, "الترخيص": 50,
            "قابلية_إعادة_الإنتاج": 50, "المراجعة_العلمية": 50, "جودة_البيانات": 55,
        },
        "المصادر_المفتوحة": [],
        "تم_تحميل_البيانات": False,
    }


def wait_for_gate():
    """With --gate FILE, the first turn waits until FILE exists (at most
    120 s), so the test can inspect the running container mid-conversation."""
    if not GATE:
        return
    deadline = time.monotonic() + 120
    logged = False
    while not os.path.exists(GATE) and time.monotonic() < deadline:
        if not logged:
            log(event="gate", state="waiting")
            logged = True
        time.sleep(0.05)
    log(event="gate", state="open" if os.path.exists(GATE) else "timed out")


def plan(body):
    """(turn name, content blocks, stop_reason) for a /v1/messages request."""
    tools = {t.get("name"): t for t in body.get("tools") or [] if isinstance(t, dict)}
    messages = body.get("messages") or []
    if "Bash" not in tools or "Write" not in tools:
        return "side", [{"type": "text", "text": "حسناً."}], "end_turn"
    results = tool_results(messages)
    if ENV_TOOL_ID not in results:
        wait_for_gate()
        return "env", [{"type": "tool_use", "id": ENV_TOOL_ID, "name": "Bash",
                        "input": {"command": ENV_COMMAND,
                                  "description": "Print the environment"}}], "tool_use"
    if WRITE_TOOL_ID not in results:
        env_text, env_error = results[ENV_TOOL_ID]
        log(event="tool_result", tool="Bash", is_error=env_error, content=env_text)
        props = (tools["Write"].get("input_schema") or {}).get("properties") or {}
        if "file_path" not in props or "content" not in props:
            log(event="error", error="the Write tool's schema has no file_path/content: %s"
                % json.dumps(tools["Write"].get("input_schema"))[:2000])
            return "bad-write-schema", [{"type": "text", "text": "no usable Write tool"}], "end_turn"
        prompt = text_of(messages[0].get("content")) if messages else ""
        name = re.search(r"«([^»]+)»", prompt)
        path = re.search(r"(/output/[A-Za-z0-9_.-]*[A-Za-z0-9_-])", prompt)
        if not name or not path:
            log(event="error", error="no dataset name or output path in the prompt", prompt=prompt[:4000])
            return "bad-prompt", [{"type": "text", "text": "no name/path in the prompt"}], "end_turn"
        log(event="prompt", name=name.group(1), path=path.group(1), prompt=prompt[:4000])
        doc = json.dumps(assessment(name.group(1)), ensure_ascii=False, indent=2)
        return "write", [{"type": "tool_use", "id": WRITE_TOOL_ID, "name": "Write",
                          "input": {"file_path": path.group(1), "content": doc}}], "tool_use"
    w_text, w_error = results[WRITE_TOOL_ID]
    log(event="tool_result", tool="Write", is_error=w_error, content=w_text)
    return "done", [{"type": "text", "text": "كُتب التقييم."}], "end_turn"


def sse(event, data):
    return ("event: %s\ndata: %s\n\n" % (event, json.dumps(data, ensure_ascii=False))).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "aq-messages-stand-in"

    def log_message(self, *a):  # the JSON log is enough
        pass

    def setup(self):
        # The TLS handshake happens here, in the connection's own thread.
        self.request.settimeout(30)
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.do_handshake()
            except (OSError, ssl.SSLError) as e:
                log(event="error", error="TLS handshake: %r" % e)
                raise
        super().setup()

    def _body(self):
        n = int(self.headers.get("content-length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _log_request(self, extra=None):
        kv = dict(event="request", method=self.command, path=self.path,
                  host=self.headers.get("host"),
                  x_api_key=self.headers.get_all("x-api-key") or [],
                  authorization=self.headers.get_all("authorization") or [],
                  user_agent=self.headers.get("user-agent"),
                  anthropic_beta=self.headers.get("anthropic-beta"))
        kv.update(extra or {})
        log(**kv)

    def _json(self, code, obj):
        data = json.dumps(obj, ensure_ascii=False).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", next_id("req"))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._body()
        self._log_request()
        self._json(200, {})

    def _other(self):
        self._log_request()
        self._json(405, {"type": "error", "error": {"type": "invalid_request_error",
                                                    "message": "not supported by the stand-in"}})
        self.close_connection = True

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_CONNECT = _other

    def do_HEAD(self):
        self._log_request()
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_POST(self):
        raw = self._body()
        path = self.path.split("?", 1)[0]
        if path == "/v1/messages/count_tokens":
            self._log_request()
            return self._json(200, {"input_tokens": 1000})
        if path != "/v1/messages":
            self._log_request({"body": raw.decode("utf-8", "replace")[:2000]})
            return self._json(200, {})
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._log_request({"error": "bad JSON body"})
            return self._json(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                               "message": "bad JSON"}})
        turn, blocks, stop = plan(body)
        self._log_request({"turn": turn, "model": body.get("model"), "stream": bool(body.get("stream")),
                           "tools": sorted(t.get("name", "?") for t in body.get("tools") or []
                                           if isinstance(t, dict)),
                           "n_messages": len(body.get("messages") or [])})
        model = body.get("model") or "claude-stand-in"
        msg_id = next_id("msg")
        usage = {"input_tokens": 100, "output_tokens": 1, "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 0}
        if not body.get("stream"):
            return self._json(200, {"id": msg_id, "type": "message", "role": "assistant", "model": model,
                                    "content": blocks, "stop_reason": stop, "stop_sequence": None,
                                    "usage": usage})
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("request-id", next_id("req"))
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        out = [sse("message_start", {"type": "message_start", "message": {
            "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": usage}})]
        for i, b in enumerate(blocks):
            if b["type"] == "text":
                out.append(sse("content_block_start", {"type": "content_block_start", "index": i,
                                                       "content_block": {"type": "text", "text": ""}}))
                out.append(sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                                       "delta": {"type": "text_delta", "text": b["text"]}}))
            else:
                out.append(sse("content_block_start", {"type": "content_block_start", "index": i,
                                                       "content_block": {"type": "tool_use", "id": b["id"],
                                                                         "name": b["name"], "input": {}}}))
                js = json.dumps(b["input"], ensure_ascii=False)
                half = len(js) // 2
                for part in (js[:half], js[half:]):
                    out.append(sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                                           "delta": {"type": "input_json_delta",
                                                                     "partial_json": part}}))
            out.append(sse("content_block_stop", {"type": "content_block_stop", "index": i}))
        out.append(sse("message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": stop, "stop_sequence": None},
                                         "usage": {"output_tokens": 20}}))
        out.append(sse("message_stop", {"type": "message_stop"}))
        for chunk in out:
            self.wfile.write(chunk)
            self.wfile.flush()


def main():
    global LOG, GATE
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--gate", help="the first turn waits until this file exists")
    a = ap.parse_args()
    GATE = a.gate
    LOG = open(a.log, "a", encoding="utf-8")
    srv = ThreadingHTTPServer((a.bind, a.port), Handler)
    srv.daemon_threads = True
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    log(event="ready", port=srv.server_address[1], tls=bool(a.cert))
    srv.serve_forever()


if __name__ == "__main__":
    main()
