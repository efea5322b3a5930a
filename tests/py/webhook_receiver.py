"""A webhook receiver that checks every delivery with the Standard Webhooks reference library.

Usage: webhook_receiver.py PORT SECRET LOG   (run with the venv scripts/setup made)

Each POST is verified with standardwebhooks.Webhook(SECRET).verify (signature, and a timestamp
within 5 minutes) and appended to LOG as one JSON line: {"ok": true, "id", "type", "data"}
(answered 204) or {"ok": false, "error"} (answered 401).
"""
import json
import time
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook

port, secret, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
hook = Webhook(secret)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            payload = hook.verify(body, headers)
            record = {"ok": True, "at": time.time(), "id": headers["webhook-id"], "type": payload["type"],
                      "data": payload["data"]}
            code = 204
        except Exception as e:  # the library's verification error, or a malformed body
            record = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            code = 401
        with open(log, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", port), Handler).serve_forever()
