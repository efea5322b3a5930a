#!/usr/bin/python3
"""A torrust-tracker style whitelist API in front of opentracker's whitelist files.

Usage: whitelist_api.py PORT TOKEN FILE:PID [FILE:PID ...]

POST /api/v1/whitelist/{infohash} with "Authorization: Bearer TOKEN" (torrust-tracker 3.x,
PR #1367) appends the 40-hex infohash to every FILE and sends SIGHUP to every opentracker PID
(opentracker reloads its whitelist on SIGHUP), then answers 200. A wrong or missing token gets
401, a token in the query string (where logs print it) 400, a malformed infohash 400. Each
request is printed as one line: "ok INFOHASH", "denied", "token in URL" or "bad PATH".
"""
import os
import signal
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

port, token, targets = int(sys.argv[1]), sys.argv[2], [t.split(":") for t in sys.argv[3:]]
PREFIX = "/api/v1/whitelist/"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        given = self.headers.get("Authorization", "")
        infohash = url.path[len(PREFIX):] if url.path.startswith(PREFIX) else ""
        if "token" in urllib.parse.parse_qs(url.query):
            self.answer(400, "token in URL")
        elif given != "Bearer " + token:
            self.answer(401, "denied")
        elif len(infohash) != 40 or any(c not in "0123456789abcdef" for c in infohash):
            self.answer(400, "bad " + url.path)
        else:
            for path, pid in targets:
                with open(path, "a") as f:
                    f.write(infohash + "\n")
                os.kill(int(pid), signal.SIGHUP)
            # opentracker reloads the list on a worker thread; give it a moment.
            time.sleep(0.3)
            self.answer(200, "ok " + infohash)

    def answer(self, code, line):
        print(line, flush=True)
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", port), Handler).serve_forever()
