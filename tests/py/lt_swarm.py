#!/usr/bin/python3
"""A real BitTorrent peer (libtorrent) against swarmpack's seeder, on loopback.

Usage: lt_swarm.py TORRENT SAVE_DIR SCRAPE_URL[,SCRAPE_URL...] TIMEOUT_SECS [MIN_COMPLETE]

1. Scrapes each tracker (HTTP scrape) for the torrent's v1 infohash until every one reports
   MIN_COMPLETE (default 1) complete peers (swarmpack's seeders) or time runs out.
2. Removes every web seed from the torrent, so the only source is whatever peer the tracker
   names, and downloads the whole torrent into SAVE_DIR.

Prints one JSON object: the scrape, the peers seen, the web seeds left, and the outcome.
Run with Debian's /usr/bin/python3 (it has python3-libtorrent).
"""
import json
import sys
import time

import libtorrent as lt
from ltkit import scrape, session

torrent, save, scrape_urls, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
min_complete = int(sys.argv[5]) if len(sys.argv) > 5 else 1
deadline = time.time() + timeout

ti = lt.torrent_info(torrent)
v1 = ti.info_hashes().v1.to_bytes()


scrapes = {}
while time.time() < deadline:
    scrapes = {u: scrape(u, v1) for u in scrape_urls.split(",")}
    if all(s.get("complete", 0) >= min_complete for s in scrapes.values()):
        break
    time.sleep(0.2)

ti.set_web_seeds([])
ses = session(
    alert_mask=lt.alert.category_t.status_notification | lt.alert.category_t.error_notification
)
atp = lt.add_torrent_params()
atp.ti = ti
atp.save_path = save
h = ses.add_torrent(atp)

peers = set()
while time.time() < deadline:
    for p in h.get_peer_info():
        if p.flags & lt.peer_info.local_connection:
            peers.add("%s:%d" % (p.ip[0], p.ip[1]))
        else:
            # It dialled in: its address carries its outgoing port, not its listen port, so
            # it is named by IP and client (the peer ID's first three bytes, "-rQ" for librqbit).
            pid = p.pid.to_bytes()[:3].decode("latin-1")
            peers.add("%s:in:%s" % (p.ip[0], pid))
    st = h.status()
    if st.is_seeding:
        break
    time.sleep(0.1)

st = h.status()
print(
    json.dumps(
        {
            "scrapes": scrapes,
            "peers": sorted(peers),
            "web_seeds": [w["url"] for w in h.torrent_file().web_seeds()],
            "seeding": bool(st.is_seeding),
            "progress": st.progress,
            "downloaded": st.total_payload_download,
            "total": ti.total_size(),
            "errors": [a.message() for a in ses.pop_alerts() if "error" in type(a).__name__],
        }
    )
)
