#!/usr/bin/env python3
"""Stand-in web hosts for the real-agent replay (tests/agent_real/): one HTTPS
server, run inside the test's network namespace, that answers for every host
of the replayed assessment by its Host header, with a certificate (one SAN per
host) from the test's CA. The worker's gateway reaches it through
resolver_overrides; nothing leaves the machine. Every request is appended to
--log as one JSON line (host, method, path, user agent, status).

  huggingface.co  GET /datasets/ORG/NAME/resolve/main/samples.jsonl: JSON
                  lines of Arabic samples (marker AQ-HF-SAMPLES-...)
  aclanthology.org  the paper's landing page (marker AQ-PAPER-ACL-...)
  doi.org         302 to the stand-in publisher's page of that DOI
  link.springer.com  the publisher's page (marker AQ-PUBLISHER-...)
  github.com      the repository's page with its README (marker AQ-GITHUB-...)
Anything else is 404 (and logged).
"""
import argparse
import json

from stand_in import Handler as StandInHandler, log, open_log, serve

MARKERS = {
    "hf": "AQ-HF-SAMPLES-5e21c7",
    "paper": "AQ-PAPER-ACL-9b04d1",
    "publisher": "AQ-PUBLISHER-3f8a62",
    "github": "AQ-GITHUB-c47d90",
}
SAMPLES = [
    {"id": i, "text": t, "label": lab, "marker": MARKERS["hf"]}
    for i, (t, lab) in enumerate([
        ("الجو جميل اليوم في القاهرة", "EGY"),
        ("شو رأيك نروح عالبحر بكرا", "LEV"),
        ("إن التعليم أساس نهضة الأمم", "MSA"),
        ("والله ما عندي فكرة يا خوي", "GLF"),
        ("قرأت الخبر في الجريدة صباح اليوم", "MSA"),
        ("ايش تبغى تاكل على العشا", "GLF"),
    ])
]
PUBLISHER_PATH = "/article/10.1007/s10579-023-09999-x"


def page(title, marker, body):
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title></head>"
            "<body><h1>%s</h1><p>%s</p><p>Reference: %s</p></body></html>"
            % (title, title, body, marker)).encode()


class Handler(StandInHandler):
    server_version = "aq-web-stand-in"

    def _send(self, code, ctype, data, extra=None):
        self.send_response(code)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        host = (self.headers.get("host") or "").split(":")[0]
        log(event="request", host=host, method=self.command, path=self.path, status=code,
            user_agent=self.headers.get("user-agent"))

    def do_GET(self):
        host = (self.headers.get("host") or "").split(":")[0].lower()
        path = self.path.split("?", 1)[0]
        if host == "huggingface.co" and path.startswith("/datasets/") and path.endswith("/samples.jsonl"):
            data = "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in SAMPLES).encode()
            return self._send(200, "application/json; charset=utf-8", data)
        if host == "aclanthology.org" and path.startswith("/20"):
            return self._send(200, "text/html; charset=utf-8", page(
                "ALDi: Quantifying the Arabic Level of Dialectness of Text", MARKERS["paper"],
                "We introduce the AOC-ALDi dataset of 127,835 sentences annotated for their level "
                "of dialectness, derived from the Arabic Online Commentary dataset."))
        if host == "doi.org" and path.startswith("/10."):
            loc = "https://link.springer.com" + PUBLISHER_PATH
            return self._send(302, "text/html; charset=utf-8",
                              b"<html><body>Redirecting</body></html>", {"location": loc})
        if host == "link.springer.com" and path == PUBLISHER_PATH:
            return self._send(200, "text/html; charset=utf-8", page(
                "Arabic dialect resources: a survey (Language Resources and Evaluation)",
                MARKERS["publisher"],
                "A journal article that cites the AOC corpus and discusses its licence."))
        if host == "github.com" and path.count("/") >= 2:
            return self._send(200, "text/html; charset=utf-8", page(
                "AMR-KELEG/ALDi: code and data for ALDi", MARKERS["github"],
                "README: the AOC-ALDi splits are in data/AOC-ALDi.tar.gz, released under the "
                "MIT License."))
        return self._send(404, "text/plain", b"not found\n")

    def do_HEAD(self):
        self.do_GET()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    a = ap.parse_args()
    open_log(a.log)
    serve(Handler, a.bind, a.port, a.cert, a.key, markers=MARKERS)


if __name__ == "__main__":
    main()
