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
import urllib.parse
import urllib.request

import libtorrent as lt

torrent, save, scrape_urls, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
min_complete = int(sys.argv[5]) if len(sys.argv) > 5 else 1
deadline = time.time() + timeout

ti = lt.torrent_info(torrent)
v1 = ti.info_hashes().v1.to_bytes()


def scrape(url):
    try:
        q = url + "?info_hash=" + urllib.parse.quote_from_bytes(v1)
        reply = lt.bdecode(urllib.request.urlopen(q, timeout=5).read())
        files = reply.get(b"files", {})
        # bittorrent-tracker (npm) bencodes the binary infohash key as UTF-8 text of its
        # Latin-1 reading; opentracker sends the raw bytes. Accept either.
        entry = files.get(v1) or files.get(v1.decode("latin-1").encode("utf-8"))
        return {k.decode(): v for k, v in entry.items()} if entry else {}
    except OSError as e:
        return {"error": str(e)}


scrapes = {}
while time.time() < deadline:
    scrapes = {u: scrape(u) for u in scrape_urls.split(",")}
    if all(s.get("complete", 0) >= min_complete for s in scrapes.values()):
        break
    time.sleep(0.2)

ti.set_web_seeds([])
ses = lt.session(
    {
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "announce_to_all_trackers": True,
        "alert_mask": lt.alert.category_t.status_notification | lt.alert.category_t.error_notification,
    }
)
atp = lt.add_torrent_params()
atp.ti = ti
atp.save_path = save
h = ses.add_torrent(atp)

peers = set()
while time.time() < deadline:
    for p in h.get_peer_info():
        peers.add("%s:%d" % (p.ip[0], p.ip[1]))
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
