#!/usr/bin/python3
"""Fresh libtorrent viewers that take each window torrent the instant it appears.

Usage: lt_fresh_viewers.py WINDOWS_DIR SAVE_ROOT COUNT LIMIT_SECS TIMEOUT_SECS SCRAPE_URL

Polls WINDOWS_DIR (a file:// origin's {match}/windows) every 5 ms. For each of the next COUNT
window torrents that appear there (torrents present at start are skipped), it starts a new
libtorrent session (a viewer that has never met any peer), removes every web seed from the
torrent, and downloads the window into SAVE_ROOT/{window}. Like most viewers, behind NAT, it
cannot be dialled (libtorrent refuses incoming connections), so it only has the peers the
tracker names when it announces, and a seeder that announces later cannot reach it. Prints one JSON line per window:
how long after the torrent was seen the viewer started, how long the whole window took, the
peers it met, whether it got every byte (from peers only: there is no web seed), and how many
complete peers (seeders) the tracker's scrape counted right as the torrent appeared.
Run with Debian's /usr/bin/python3 (it has python3-libtorrent).
"""
import json
import os
import sys
import time

import libtorrent as lt
from ltkit import scrape, session

windows_dir, save_root, count, limit, timeout = (
    sys.argv[1],
    sys.argv[2],
    int(sys.argv[3]),
    float(sys.argv[4]),
    float(sys.argv[5]),
)
scrape_url = sys.argv[6]
POLL = 0.005
deadline = time.monotonic() + timeout


def listing():
    try:
        return {n for n in os.listdir(windows_dir) if n.endswith(".torrent")}
    except FileNotFoundError:
        return set()


seen = listing()
viewers = []  # dicts with session, handle, timing
done = []


def new_session():
    # Behind NAT: incoming connections are refused.
    return session(enable_incoming_tcp=False, enable_incoming_utp=False)


# The next viewer's client is already open (as a player page is) when its torrent appears.
spare = [new_session()]


def start(name):
    seen_at = time.monotonic()
    ti = lt.torrent_info(os.path.join(windows_dir, name))
    ti.set_web_seeds([])
    ses = spare.pop()
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = os.path.join(save_root, name[: -len(".torrent")])
    h = ses.add_torrent(atp)
    started = time.monotonic()
    seeders = scrape(scrape_url, ti.info_hashes().v1.to_bytes(), timeout=2).get("complete", -1)
    spare.append(new_session())
    viewers.append(
        {
            "window": name[: -len(".torrent")],
            "session": ses,
            "handle": h,
            "total": ti.total_size(),
            "seen": seen_at,
            # The torrent appeared at most one poll before it was seen.
            "start_ms": (started - seen_at + POLL) * 1000.0,
            "peers": set(),
            "seeders_at_appearance": seeders,
        }
    )


while len(done) < count and time.monotonic() < deadline:
    for name in sorted(listing() - seen):
        seen.add(name)
        if len(done) + len(viewers) < count:
            start(name)
    for v in list(viewers):
        h = v["handle"]
        for p in h.get_peer_info():
            if p.flags & lt.peer_info.local_connection:
                v["peers"].add("%s:%d" % (p.ip[0], p.ip[1]))
            else:
                # It dialled in (the seeder learnt this viewer from the tracker): its address
                # carries its outgoing port, not its listen port, so it is named by IP and
                # client (the peer ID's first three bytes, "-rQ" for librqbit), as lt_swarm.py.
                pid = p.pid.to_bytes()[:3].decode("latin-1")
                v["peers"].add("%s:in:%s" % (p.ip[0], pid))
        st = h.status()
        elapsed = time.monotonic() - v["seen"]
        if st.is_seeding or elapsed > limit:
            viewers.remove(v)
            record = {
                "window": v["window"],
                "start_ms": round(v["start_ms"], 1),
                "complete_secs": round(elapsed, 3),
                "complete": bool(st.is_seeding),
                "payload_downloaded": st.total_payload_download,
                "total": v["total"],
                "web_seeds": [w["url"] for w in h.torrent_file().web_seeds()],
                "peers": sorted(v["peers"]),
                "seeders_at_appearance": v["seeders_at_appearance"],
            }
            done.append(record)
            print(json.dumps(record), flush=True)
            v["session"].remove_torrent(h)
    time.sleep(POLL)

if len(done) < count:
    print(json.dumps({"error": "timed out", "windows_done": len(done)}), flush=True)
    sys.exit(1)
