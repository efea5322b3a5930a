"""Loads a .torrent with libtorrent, prints what libtorrent sees, and rechecks it against the
files under SAVE_PATH. Run with Debian's /usr/bin/python3 (python3-libtorrent).
Usage: lt_check.py TORRENT SAVE_PATH"""
import sys
import time

import libtorrent as lt

ti = lt.torrent_info(sys.argv[1])
ih = ti.info_hashes()
print("v1", int(ih.has_v1()), str(ih.v1))
print("v2", int(ih.has_v2()), str(ih.v2))
print("name", ti.name())
print("files", ti.num_files())
print("webseeds", " ".join(w["url"] for w in ti.web_seeds()))
print("trackers", " ".join(t.url for t in ti.trackers()))
ses = lt.session({
    "listen_interfaces": "127.0.0.1:0",
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "alert_mask": lt.alert.category_t.status_notification | lt.alert.category_t.error_notification,
})
h = ses.add_torrent({"ti": ti, "save_path": sys.argv[2]})
# Adding a torrent whose files exist makes libtorrent hash-check them; wait for that check.
deadline = time.time() + 60
checked = False
while time.time() < deadline and not checked:
    ses.wait_for_alert(500)
    checked = any(isinstance(a, lt.torrent_checked_alert) for a in ses.pop_alerts())
s = h.status()
print("checked", int(checked))
print("progress_ppm", s.progress_ppm)
print("seeding", int(s.is_seeding))
