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
whose `tools` offer Bash and Write is the agent's conversation; each answer is
the first step whose tool result is not yet in the request's messages, and the
result of the step before it is logged (event "tool_result", with its step):
  env       a Bash tool_use that prints the agent's environment and that of
            every process in the container (the test checks that the real key
            is nowhere in it); with --gate FILE held until FILE exists;
  with --replay FILE (JSON: the URLs), the nine steps of a real assessment:
  read      Read /input/metadata.json
  download  Bash: python3 (urllib, through HTTPS_PROXY) downloads samples
  paper     WebFetch of the paper's page
  doi       WebFetch of a doi.org link (the host redirects to a publisher)
  publisher WebFetch of the publisher's URL found in the doi result
  github    WebFetch of the repository
  denied    WebFetch of a host the profile does not allow
  analysis  Bash: python3 analyses the downloaded samples
  write     Write of a valid assessment (name and path from the prompt)
  done      end_turn with a short text.
Any other /v1/messages request (a side query without those tools, such as
WebFetch's summary of a fetched page) is logged (event "side", with the
stand-in markers it holds) and answered with a text naming those markers;
/v1/messages/count_tokens gets a count; every other path gets 200 {} (and is
logged, so the test can report what Claude Code asked for).
"""
import argparse
import json
import os
import re
import threading
import time

from stand_in import Handler as StandInHandler, log, open_log, serve

lock = threading.Lock()
GATE = None
REPLAY = None
counter = [0]

ENV_COMMAND = (
    "echo AQ-ENV-BEGIN; env; echo AQ-ENV-END; "
    "for p in /proc/[0-9]*; do "
    "echo \"AQ-PROC $p $(tr '\\0' ' ' < $p/cmdline 2>/dev/null)\"; "
    "tr '\\0' '\\n' < $p/environ 2>/dev/null; done; "
    "echo AQ-PROC-END; ls -la /run/secrets 2>&1 | head -3; ls /run/assessq 2>&1"
)
DOWNLOAD_PY = r"""import json, urllib.request
u = "%s"
data = urllib.request.urlopen(u, timeout=60).read().decode("utf-8")
open("/tmp/samples.jsonl", "w", encoding="utf-8").write(data)
rows = [json.loads(l) for l in data.splitlines() if l.strip()]
print("AQ-DOWNLOAD rows=%%d" %% len(rows))
for r in rows[:3]:
    print(json.dumps(r, ensure_ascii=False))
"""
ANALYSIS_PY = r"""import collections, json
rows = [json.loads(l) for l in open("/tmp/samples.jsonl", encoding="utf-8") if l.strip()]
c = collections.Counter(r["label"] for r in rows)
print("AQ-ANALYSIS rows=%d mean_chars=%.1f labels=%s" % (
    len(rows), sum(len(r["text"]) for r in rows) / len(rows), json.dumps(c, sort_keys=True)))
"""
MARKER_RE = re.compile(r"AQ-[A-Z]+(?:-[A-Z]+)*-[0-9a-f]{6}")


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


def assessment(name, replay):
    loaded = bool(replay)
    return {
        "الاسم": name,
        "الاسم_الأصلي": name,
        "درجة_الجودة": 55,
        "تقدير_الجودة": "مقبول",
        "الملخص": ("تقييم لمجموعة البيانات بعد تحميل عينات منها وقراءة ورقتها ومستودعها."
                   if loaded else
                   "تقييم آلي أولي لمجموعة البيانات بناءً على بياناتها الوصفية وحدها، "
                   "دون تحميل عينات منها."),
        "فحص_البيانات": {
            "الطريقة_المستخدمة": "hf_viewer" if loaded else "metadata_only",
            "عدد_العينات_المفحوصة": 6 if loaded else 0,
            "معاينة_العينات": ["الجو جميل اليوم في القاهرة", "إن التعليم أساس نهضة الأمم"] if loaded else [],
            "مشاكل_مكتشفة": ["عينة صغيرة"] if loaded else ["لم تُحمَّل أي عينة"],
            "البيانات_تطابق_الوصف": True,
        },
        "نقاط_القوة": ["وصف واضح للمحتوى"],
        "نقاط_الضعف": ["لم تُفحص إلا عينات قليلة"] if loaded else ["لم تُفحص البيانات نفسها"],
        "الاستخدامات_الموصى_بها": ["البحث في معالجة اللغة العربية"],
        "تفصيل_الجودة": {
            "سهولة_الوصول": 50, "التوثيق": 60, "السلامة_الأخلاقية": 60, "الترخيص": 50,
            "قابلية_إعادة_الإنتاج": 50, "المراجعة_العلمية": 50, "جودة_البيانات": 55,
        },
        "المصادر_المفتوحة": [replay["paper_url"], replay["github_url"], replay["hf_url"]] if loaded else [],
        "تم_تحميل_البيانات": loaded,
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


def webfetch(url, what):
    return {"url": url, "prompt": "Summarise %s: title, what it says about the dataset, licence." % what}


def steps(replay):
    """The conversation: (step, tool, input or a function of the results so
    far). Without --replay: the environment print and the Write only."""
    out = [("env", "Bash", {"command": ENV_COMMAND, "description": "Print the environment"})]
    if replay:
        r = replay

        def publisher_url(results):
            text = results.get(step_id("doi"), ("", False))[0]
            m = re.search(r"https://%s[^\s\"'<>)\]]*" % re.escape(r["publisher_host"]), text)
            return webfetch(m.group(0).rstrip(".,") if m else r["publisher_url"], "the publisher's page")

        out += [
            ("read", "Read", {"file_path": "/input/metadata.json"}),
            ("download", "Bash", {"command": "python3 - <<'PY'\n" + DOWNLOAD_PY % r["hf_url"] + "PY",
                                  "description": "Download samples from Hugging Face"}),
            ("paper", "WebFetch", webfetch(r["paper_url"], "the paper")),
            ("doi", "WebFetch", webfetch(r["doi_url"], "the DOI's page")),
            ("publisher", "WebFetch", publisher_url),
            ("github", "WebFetch", webfetch(r["github_url"], "the repository")),
            ("denied", "WebFetch", webfetch(r["denied_url"], "the dataset's page")),
            ("analysis", "Bash", {"command": "python3 - <<'PY'\n" + ANALYSIS_PY + "PY",
                                  "description": "Analyse the samples"}),
        ]
    out.append(("write", "Write", None))
    return out


def step_id(step):
    return "toolu_aq_%s" % step


def plan(body):
    """(turn name, content blocks, stop_reason) for a /v1/messages request."""
    tools = {t.get("name"): t for t in body.get("tools") or [] if isinstance(t, dict)}
    messages = body.get("messages") or []
    if "Bash" not in tools or "Write" not in tools:
        return side(body)
    results = tool_results(messages)
    prev = None
    for step, tool, inp in steps(REPLAY):
        sid = step_id(step)
        if sid in results:
            prev = (step, tool)
            continue
        if prev:
            text, err = results[step_id(prev[0])]
            log(event="tool_result", step=prev[0], tool=prev[1], is_error=err, content=text)
        if tool not in tools:
            # Claude Code defers some tools (WebFetch among them): the model
            # loads one with ToolSearch "select:NAME", as a real model does.
            search_id = step_id("search_" + tool)
            if "ToolSearch" in tools and search_id not in results:
                props = (tools["ToolSearch"].get("input_schema") or {}).get("properties") or {}
                inp = {"query": "select:" + tool}
                if "max_results" in props:
                    inp["max_results"] = 1
                log(event="toolsearch", tool=tool, schema=tools["ToolSearch"].get("input_schema"))
                return "toolsearch", [{"type": "tool_use", "id": search_id, "name": "ToolSearch",
                                       "input": inp}], "tool_use"
            log(event="error", error="Claude Code offers no %s tool: %s" % (tool, sorted(tools)))
            return "no-" + tool, [{"type": "text", "text": "no %s tool" % tool}], "end_turn"
        if step == "env":
            wait_for_gate()
        if tool == "Write":
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
            doc = json.dumps(assessment(name.group(1), REPLAY), ensure_ascii=False, indent=2)
            inp = {"file_path": path.group(1), "content": doc}
        elif callable(inp):
            inp = inp(results)
        return step, [{"type": "tool_use", "id": sid, "name": tool, "input": inp}], "tool_use"
    text, err = results[step_id("write")]
    log(event="tool_result", step="write", tool="Write", is_error=err, content=text)
    return "done", [{"type": "text", "text": "كُتب التقييم."}], "end_turn"


def side(body):
    """A request without the agent's tools: Claude Code's side queries, among
    them WebFetch's summary of a fetched page (the page's text in the user
    message). The answer names every stand-in marker it was sent, so the
    WebFetch result Claude Code hands back shows what it read."""
    raw = json.dumps(body, ensure_ascii=False)
    markers = sorted(set(MARKER_RE.findall(raw)))
    messages = body.get("messages") or []
    last = text_of(messages[-1].get("content")) if messages else ""
    system = body.get("system")
    system = text_of(system) if isinstance(system, list) else (system or "")
    if not last.strip():
        last = json.dumps(messages, ensure_ascii=False)
    log(event="side", model=body.get("model"), markers=markers, system=system[:400],
        user=last[:3000], tools=sorted(t.get("name", "?") for t in body.get("tools") or []
                                       if isinstance(t, dict)))
    text = "Summary of the page. Markers: %s." % (", ".join(markers) if markers else "none")
    return "side", [{"type": "text", "text": text}], "end_turn"


def sse(event, data):
    return ("event: %s\ndata: %s\n\n" % (event, json.dumps(data, ensure_ascii=False))).encode()


class Handler(StandInHandler):
    server_version = "aq-messages-stand-in"

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
    global GATE, REPLAY
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--gate", help="the first turn waits until this file exists")
    ap.add_argument("--replay", help="JSON file: the URLs of the replayed assessment's steps")
    a = ap.parse_args()
    GATE = a.gate
    if a.replay:
        with open(a.replay, encoding="utf-8") as f:
            REPLAY = json.load(f)
    open_log(a.log)
    serve(Handler, a.bind, a.port, a.cert, a.key, tls=bool(a.cert))


if __name__ == "__main__":
    main()
