#!/usr/bin/env python3
"""The test hosts of egress_container_test, run inside the network namespace
the test creates (ip netns exec NS python3 netns_server.py ...).

Listens on 0.0.0.0 (every address the namespace holds) on TCP 80 (HTTP),
443 (HTTPS, certificate from the test CA) and UDP 5353, and appends one JSON
line per event to --log: every TCP connection as it is accepted (local and
peer address, before any byte), every HTTP request (Host, SNI, headers) and
every datagram. The test reads the log to count what reached which address.
Answers: 200 "hello from ADDR host=HOST" for any request.
"""
import argparse
import json
import socket
import ssl
import threading

lock = threading.Lock()


def log(f, **kv):
    with lock:
        f.write(json.dumps(kv) + "\n")
        f.flush()


def read_head(conn):
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    clen = int(headers.get("content-length", ["0"])[0] or 0)
    while len(body) < clen:
        chunk = conn.recv(4096)
        if not chunk:
            break
        body += chunk
    return lines[0] if lines else "", headers, body


def serve_conn(f, conn, peer, port, tls_ctx):
    local = conn.getsockname()[0]
    log(f, event="accept", proto="tcp", local=local, port=port, peer=peer[0])
    sni = None
    try:
        conn.settimeout(10)
        if tls_ctx is not None:
            names = []
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # one per connection: its own SNI
            ctx.load_cert_chain(*tls_ctx)

            def on_sni(sslobj, name, _ctx):
                names.append(name)

            ctx.sni_callback = on_sni
            conn = ctx.wrap_socket(conn, server_side=True)
            sni = names[0] if names else None
        line, headers, body = read_head(conn)
        host = headers.get("host", [""])[0]
        log(f, event="request", local=local, port=port, peer=peer[0], sni=sni, line=line,
            host=host, headers=headers, body=body.decode("latin-1")[:2000])
        msg = ("hello from %s host=%s\n" % (local, host)).encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s" % (len(msg), msg))
    except Exception as e:  # a refused handshake, a reset: logged, not fatal
        log(f, event="error", local=local, port=port, peer=peer[0], error=repr(e))
    finally:
        try:
            conn.close()
        except Exception:
            pass


def tcp_server(f, port, tls_ctx):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(128)

    def loop():
        while True:
            conn, peer = s.accept()
            threading.Thread(target=serve_conn, args=(f, conn, peer, port, tls_ctx),
                             daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def udp_server(f, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))

    def loop():
        while True:
            data, peer = s.recvfrom(65536)
            log(f, event="datagram", port=port, peer=peer[0], bytes=len(data))

    threading.Thread(target=loop, daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    a = ap.parse_args()
    f = open(a.log, "a")
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(a.cert, a.key)  # fail early
    tcp_server(f, 80, None)
    tcp_server(f, 443, (a.cert, a.key))
    udp_server(f, 5353)
    log(f, event="ready")
    threading.Event().wait()


if __name__ == "__main__":
    main()
