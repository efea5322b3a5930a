#!/usr/bin/python3
"""A flash crowd of stock libtorrent viewers for scripts/swarm-bench.

Usage: swarm_viewers.py WINDOWS_DIR SAVE_ROOT VIEWERS WINDOWS TIMEOUT_SECS

Polls WINDOWS_DIR (the origin's {match}/windows) every 5 ms. For each of the next WINDOWS
window torrents to appear (those there at start are skipped), VIEWERS fresh libtorrent
sessions add it at once, web seed kept (the origin is their fallback), and download it.
Prints one JSON line per window: for each viewer, seconds from the torrent appearing to its first byte from
a peer and to the whole window, and its bytes from peers, from other viewers among them (peers
whose peer ID has libtorrent's -LT prefix: the edge seeders are librqbit) and from the web
seed. A crowd
leaves its window once every viewer has it (or after 60 s).
Run with Debian's /usr/bin/python3 (it has python3-libtorrent).
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "py"))
import libtorrent as lt  # noqa: E402
from ltkit import session as lt_session  # noqa: E402

windows_dir, save_root = sys.argv[1], sys.argv[2]
viewers_n, windows_n, timeout = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
POLL = 0.005
# peer_info.connection_type of a BEP 19 web seed or a BEP 17 HTTP seed (flag values).
WEB = (lt.peer_info.web_seed, lt.peer_info.http_seed)
# The peer ID prefix of the viewers' sessions (libtorrent's default fingerprint); an edge
# seeder (`swarmpack seed`, librqbit) has another.
VIEWER_PREFIX = b"-LT"


def is_viewer(p):
    try:
        return bytes(p.pid.to_bytes()).startswith(VIEWER_PREFIX)
    except (AttributeError, TypeError):
        return False


def session():
    return lt_session(alert_mask=0)


def listing():
    try:
        return {n for n in os.listdir(windows_dir) if n.endswith(".torrent")}
    except FileNotFoundError:
        return set()


class Viewer:
    def __init__(self, ses, ti, save, appeared):
        self.ses = ses
        atp = lt.add_torrent_params()
        atp.ti = ti
        atp.save_path = save
        self.h = ses.add_torrent(atp)
        self.appeared = appeared
        self.first_peer_byte = None
        self.complete = None
        self.bytes = {}  # (endpoint, is_web) -> most bytes seen on that connection
        self.viewers = set()  # endpoints of peers that are other viewers

    def poll(self):
        now = time.monotonic()
        for p in self.h.get_peer_info():
            key = ("%s:%d" % (p.ip[0], p.ip[1]), p.connection_type in WEB)
            self.bytes[key] = max(self.bytes.get(key, 0), p.total_download)
            if not key[1] and is_viewer(p):
                self.viewers.add(key[0])
            if not key[1] and p.total_download > 0 and self.first_peer_byte is None:
                self.first_peer_byte = now - self.appeared
        if self.complete is None and self.h.status().is_seeding:
            self.complete = now - self.appeared

    def report(self):
        peer = sum(b for (_, web), b in self.bytes.items() if not web)
        web = sum(b for (_, web), b in self.bytes.items() if web)
        viewer = sum(b for (ep, web), b in self.bytes.items() if not web and ep in self.viewers)
        return {
            "viewer_bytes": viewer,
            "first_peer_byte_secs": self.first_peer_byte,
            "complete_secs": self.complete,
            "peer_bytes": peer,
            "web_bytes": web,
        }


seen = listing()
spare = [session() for _ in range(viewers_n)]
crowds = []  # (window, [Viewer])
reported = 0
deadline = time.monotonic() + timeout
while reported < windows_n and time.monotonic() < deadline:
    now = time.monotonic()
    for name in sorted(listing() - seen):
        seen.add(name)
        if len(crowds) + reported >= windows_n:
            continue
        ti = lt.torrent_info(os.path.join(windows_dir, name))
        window = name[: -len(".torrent")]
        crowd = [
            Viewer(spare.pop() if spare else session(), lt.torrent_info(ti), os.path.join(save_root, window, str(i)), now)
            for i in range(viewers_n)
        ]
        crowds.append((window, crowd, lt.torrent_info(ti).total_size()))
    for window, crowd, total in crowds:
        for v in crowd:
            v.poll()
    # A crowd reports once all its viewers are done (or its time is up), then leaves once
    # the next crowd is done too.
    now = time.monotonic()
    while crowds and all(
        v.complete is not None or now - v.appeared > 60 for v in crowds[0][1]
    ):
        window, crowd, total = crowds.pop(0)
        print(json.dumps({"window": window, "total": total, "viewers": [v.report() for v in crowd]}), flush=True)
        reported += 1
        for v in crowd:
            v.ses.remove_torrent(v.h)
        # The next crowd's clients open now, between windows, not while one is measured.
        spare = [session() for _ in range(viewers_n)]
    time.sleep(0.05 if crowds else POLL)
sys.exit(0 if reported >= windows_n else 1)
