// Watches the live edge of the media playlist hls.js plays, at the moments new segments are
// due, so that fetch-early (web/player/early.js) starts when a segment is published rather
// than when hls.js next reloads the playlist (every target duration, at a phase of its own: on
// average half a segment later). Segments start on a fixed UTC grid, so the next one is due
// when the newest one's media ends (EXT-X-PROGRAM-DATE-TIME + duration) plus the time the
// match takes to publish it; that lag (with any clock skew of this machine) is learnt from
// when segments were first seen.
//
// Every playlist it loads goes to `onPlaylist(text, url)` (the player takes the signed tags),
// then each new segment to `onSegment({url, sn, level, baseurl, start, duration})`.

const RETRY_MS = 250; // between polls while the next segment is late
const GIVE_UP_MS = 3000; // after this, hls.js's own reloads find it

/** The media sequence, and each segment's URL and duration, of a media playlist. */
export function parseEdge(text, base) {
  let sequence = 0;
  let duration = null;
  const segments = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#EXT-X-MEDIA-SEQUENCE:')) sequence = Number(line.slice(22));
    else if (line.startsWith('#EXTINF:')) duration = parseFloat(line.slice(8));
    else if (line && !line.startsWith('#')) {
      segments.push({ url: new URL(line, base).href, duration });
      duration = null;
    }
  }
  return segments.map((s, i) => ({ ...s, sn: sequence + i }));
}

export class EdgeWatch {
  /** `active()`: whether to watch now (fetch-early is on: not alone, with peer-to-peer). */
  constructor({ onPlaylist, onSegment, active }) {
    Object.assign(this, { onPlaylist, onSegment, active });
    this.edge = null; // {url, level, sn, start, duration, endMs (wall clock, from PDT)}
    this.lagMs = 300; // segment end (PDT) to first seen: learnt
    this.timer = null;
    this.stopped = false;
  }

  /** hls.js reloaded the playlist it plays (LEVEL_UPDATED): the newest segment it knows. */
  follow(details, level) {
    const frags = details.fragments || [];
    const last = frags[frags.length - 1];
    if (!last || !details.live || !last.programDateTime) return;
    const endMs = last.programDateTime + last.duration * 1000;
    const fresh = !this.edge || this.edge.level !== level || last.sn > this.edge.sn;
    if (!fresh) return;
    const firstSight = this.edge && this.edge.level === level && last.sn === this.edge.sn + 1;
    if (firstSight) this.learn(endMs);
    this.edge = { url: details.url, level, sn: last.sn, start: last.start, duration: last.duration, endMs };
    this.schedule();
  }

  learn(endMs) {
    const seen = Date.now() - endMs;
    // Quick to come down, slow to go up (one late reload says little).
    this.lagMs = seen < this.lagMs ? seen : 0.8 * this.lagMs + 0.2 * seen;
  }

  schedule() {
    clearTimeout(this.timer);
    if (this.stopped || !this.edge || !this.active()) return;
    const due = this.edge.endMs + this.edge.duration * 1000 + this.lagMs - 50;
    const started = Date.now();
    const poll = async () => {
      if (this.stopped || !this.edge) return;
      const edge = this.edge;
      let text;
      try {
        const r = await fetch(edge.url, { cache: 'no-store' });
        text = r.ok ? await r.text() : null;
      } catch {
        text = null;
      }
      if (this.stopped || this.edge !== edge) return; // hls.js moved on meanwhile
      const news = text ? parseEdge(text, edge.url).filter((s) => s.sn > edge.sn) : [];
      if (!news.length) {
        if (Date.now() - started < GIVE_UP_MS) this.timer = setTimeout(poll, RETRY_MS);
        return;
      }
      this.onPlaylist(text, edge.url);
      let start = edge.start + edge.duration;
      let endMs = edge.endMs;
      for (const s of news) {
        const duration = s.duration || edge.duration;
        endMs += duration * 1000;
        this.onSegment({ url: s.url, sn: s.sn, level: edge.level, baseurl: edge.url, start, duration });
        start += duration;
      }
      const last = news[news.length - 1];
      if (last.sn === edge.sn + 1) this.learn(endMs);
      this.edge = { ...edge, sn: last.sn, start: start - (last.duration || edge.duration), duration: last.duration || edge.duration, endMs };
      this.schedule();
    };
    this.timer = setTimeout(poll, Math.max(0, due - Date.now()));
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
