"""Shared by the real-agent test's stand-in servers (messages_server.py,
web_server.py): the JSON-lines log, a request handler base that does its TLS
handshake in the connection's own thread, and the threaded server (HTTPS when
given a certificate) that logs a "ready" line before it serves."""
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_lock = threading.Lock()
_log = None


def open_log(path):
    global _log
    _log = open(path, "a", encoding="utf-8")


def log(**kv):
    with _lock:
        _log.write(json.dumps(kv, ensure_ascii=False) + "\n")
        _log.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

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


def serve(handler, bind, port, cert=None, key=None, **ready):
    """Serves forever on bind:port; logs event=ready with the port and `ready`."""
    srv = ThreadingHTTPServer((bind, port), handler)
    srv.daemon_threads = True
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    log(event="ready", port=srv.server_address[1], **ready)
    srv.serve_forever()
