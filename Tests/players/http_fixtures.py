"""The far side of the farm's outbound HTTP, for the end-to-end tests: a file server for URL sources and a webhook
receiver that checks every signature the way docs/api.md tells an upload service to.

usage: http_fixtures.py FOLDER PORT_FILE LOG_FILE SECRET FAILURES

GET /NAME serves FOLDER/NAME (404 if missing). POST /hook answers 500 to the first FAILURES requests and 200 after,
and appends a JSON line per request to LOG_FILE: its status, whether Farm-Signature was valid, the event and
delivery headers, the body. The bound port is written to PORT_FILE.
"""

import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

folder, port_file, log_file, secret, failures = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
lock = threading.Lock()
received = 0


def signature_is_valid(header, body):
    """docs/api.md, "Verify a webhook": HMAC-SHA256 of "<t>.<body>", a recent t, compared in constant time."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    timestamp = parts.get("t", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        path = os.path.join(folder, os.path.basename(self.path))
        if not os.path.isfile(path):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with open(path, "rb") as file:
            data = file.read()
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        global received
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            received += 1
            status = 500 if received <= failures else 200
            record = {
                "n": received,
                "status": status,
                "valid": signature_is_valid(self.headers.get("Farm-Signature", ""), body),
                "event": self.headers.get("Farm-Event"),
                "delivery": self.headers.get("Farm-Delivery"),
                "body": body.decode("utf-8", "replace"),
            }
            with open(log_file, "a") as log:
                log.write(json.dumps(record) + "\n")
        answer = b"ok" if status == 200 else b"try again later"
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as out:
    out.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
