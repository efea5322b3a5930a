"""Shared by the libtorrent helpers of the tests and scripts/swarm-bench: a loopback
libtorrent session, and a tracker scrape that reads either tracker's reply.
Needs Debian's /usr/bin/python3 (python3-libtorrent)."""
import urllib.parse
import urllib.request

import libtorrent as lt


def session(**settings):
    """A libtorrent session on loopback: no DHT, LSD, UPnP or NAT-PMP; `settings` add to it."""
    pack = {
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "announce_to_all_trackers": True,
    }
    pack.update(settings)
    return lt.session(pack)


def scrape(url, v1, timeout=5):
    """The scrape entry for infohash v1 (bytes) as a dict of str -> int; {} if the tracker does
    not know it, {"error": ...} if the scrape failed. bittorrent-tracker (npm) bencodes the
    binary infohash key as the UTF-8 of its Latin-1 reading; opentracker sends the raw bytes."""
    try:
        q = url + "?info_hash=" + urllib.parse.quote_from_bytes(v1)
        files = lt.bdecode(urllib.request.urlopen(q, timeout=timeout).read()).get(b"files", {})
        entry = files.get(v1) or files.get(v1.decode("latin-1").encode("utf-8")) or {}
        return {k.decode(): v for k, v in entry.items()}
    except OSError as e:
        return {"error": str(e)}
