#!/usr/bin/env python3
"""Glass-to-origin latency of a live `swarmpack run` (scripts/bench).

For every segment: from the moment its last frame was captured (its PDT + EXTINF on the master
timecode, which is UTC) to the moment the origin holds the segment *and* its media playlist
names it (what a viewer needs). Polls every media playlist under ORIGIN/MATCH every 2 ms while
the run lives; the origin is a local directory (file://), written by rename, so a playlist is
either the old one or the new one.

    glass_to_origin.py ORIGIN_MATCH_DIR PID [SKIP]

Prints one line: `samples=N p50_ms=X p99_ms=Y max_ms=Z`. The first SKIP segments of each
rendition (default 2: the encoders starting) are left out.
"""
import datetime
import glob
import os
import sys
import time


def parse(text):
    """(uri, pdt_epoch_s, extinf_s) for each segment of a media playlist."""
    out, pdt, dur = [], None, None
    for line in text.splitlines():
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            stamp = line.split(":", 1)[1].strip().replace("Z", "+00:00")
            pdt = datetime.datetime.fromisoformat(stamp).timestamp()
        elif line.startswith("#EXTINF:"):
            dur = float(line.split(":", 1)[1].split(",")[0])
        elif line and not line.startswith("#"):
            if pdt is not None and dur is not None:
                out.append((line, pdt, dur))
            pdt, dur = None, None
    return out


def main():
    match_dir, pid = sys.argv[1], int(sys.argv[2])
    skip = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    seen, late = {}, []
    while True:
        alive = os.path.exists(f"/proc/{pid}")
        for pl in glob.glob(os.path.join(match_dir, "*", "*", "index.m3u8")):
            try:
                with open(pl) as f:
                    text = f.read()
            except OSError:
                continue
            now = time.time()
            rendition = os.path.dirname(pl)
            got = seen.setdefault(rendition, set())
            for uri, pdt, dur in parse(text):
                if uri in got:
                    continue
                got.add(uri)
                if not os.path.exists(os.path.join(rendition, uri)):
                    print(f"{rendition}/{uri} named before it is on the origin", file=sys.stderr)
                    sys.exit(1)
                if len(got) > skip:
                    late.append(now - (pdt + dur))
        if not alive:
            break
        time.sleep(0.002)
    if not late:
        print("samples=0 p50_ms=nan p99_ms=nan max_ms=nan")
        return
    late.sort()
    q = lambda p: late[min(len(late) - 1, int(p * len(late)))] * 1000
    print(f"samples={len(late)} p50_ms={q(0.5):.0f} p99_ms={q(0.99):.0f} max_ms={late[-1] * 1000:.0f}")


if __name__ == "__main__":
    main()
