// Fetch-early: a new segment enters the swarm when the playlist names it, not when some
// viewer's deadline forces it over HTTP. In each viewer's neighbourhood (itself and the peers it
// is connected to) the viewers rank themselves for every new segment by a hash of peer ID and
// segment (rendezvous hashing: viewers with the same neighbourhood agree without talking). The
// first fetches the segment over HTTP at once; each of the next `fetchers - 1` (backups, for
// churn) half a segment later per rank, and only if the segment has not reached it from a
// peer. Everyone else takes it from peers with most of their buffer still ahead
// (docs/PERFORMANCE.md, "Close to live").
//
// A page learns of new segments from hls.js's playlist reloads (every target duration, and
// half that after a reload that found nothing new, so within about half a segment of
// publication).
//
// What is fetched early is checked like every HTTP segment before it is kept, played or shared;
// the player's fragment loader (earlyFirstLoader) hands hls.js the early bytes when hls.js asks
// for the segment, and takes over a peer or HTTP load already under way when they arrive first.
// A hostile peer can rank itself first by choosing its ID and then not share: its neighbours
// then wait for their backups or their urgent window, as without fetch-early.

/** 32-bit FNV-1a with a murmur3 finaliser: a well-mixed, stable score for rendezvous hashing. */
function score(id, key, sn) {
  let h = 0x811c9dc5;
  const s = `${id}|${key}|${sn}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const ID_CHARS = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** A WebTorrent peer ID (20 characters) that this page knows: p2p-media-loader uses it as given. */
export function newPeerId() {
  const random = crypto.getRandomValues(new Uint8Array(12));
  return `-SP0100-${[...random].map((b) => ID_CHARS[b % ID_CHARS.length]).join('')}`;
}

export class EarlyFetch {
  /**
   * selfId: this page's peer ID; fetchers: k (0: off); segmentSeconds; cache: the SegmentCache;
   * fetchVerified(url) -> Promise<ArrayBuffer|null> (fetched over HTTP and checked, or null).
   */
  constructor({ selfId, fetchers, segmentSeconds, cache, fetchVerified }) {
    Object.assign(this, { selfId, fetchers, segmentSeconds, cache, fetchVerified });
    this.peers = new Set();
    this.jobs = new Map(); // segment URL -> {started, promise, resolve}
    this.inflight = new Map(); // segment URL -> callback(data) of a loader waiting on p2p-media-loader
    this.waiting = new Map(); // segment URL -> its hls.js fragment, for those loaders
    this.rescued = 0; // segments fetched because playback waited for them (rescue())
    this.newest = new Map(); // hls.js level -> newest sequence number seen
    this.fetched = []; // URLs of the segments fetched early (the newest 200), for tests and dashboards
    this.timers = new Set();
    this.seen = new Map(); // segment URL -> when this page first saw it in a playlist (performance.now())
  }

  /** Milliseconds since this page first saw `url` in a playlist (null: before it played). */
  age(url) {
    const t = this.seen.get(url);
    return t === undefined ? null : Math.round(performance.now() - t);
  }

  addPeer(id) {
    this.peers.add(id);
  }

  removePeer(id) {
    this.peers.delete(id);
  }

  /** This page's rank for segment `sn` of the playlist at `key` among itself and its peers. */
  rank(key, sn) {
    const mine = score(this.selfId, key, sn);
    let above = 0;
    for (const p of this.peers) if (score(p, key, sn) > mine) above += 1;
    return above;
  }

  /** Every segment new in a playlist hls.js reloaded (LEVEL_UPDATED): the ones to fetch early. */
  playlist(details, level) {
    const frags = details.fragments || [];
    if (!frags.length) return;
    if (!this.newest.has(level)) {
      // What was published before this page played this level comes by the usual policy.
      this.newest.set(level, frags[frags.length - 1].sn);
      return;
    }
    for (const frag of frags) this.consider(frag);
  }

  /** Starts (or schedules) the early fetch of `frag` if it is new and this page is among the first k. */
  consider(frag) {
    const newest = this.newest.get(frag.level);
    if (newest === undefined || frag.sn <= newest) return;
    this.newest.set(frag.level, frag.sn);
    this.seen.set(frag.url, performance.now());
    if (this.seen.size > 64) this.seen.delete(this.seen.keys().next().value);
    if (!this.fetchers) return;
    this.forgetOld(frag.sn);
    const key = new URL(frag.baseurl || frag.url).pathname;
    const rank = this.rank(key, frag.sn);
    if (rank >= this.fetchers) return;
    const job = this.job(frag, () => rank > 0 && this.cache.has(frag.level, frag.sn)); // a peer was faster
    if (rank === 0) job.go();
    else {
      const t = setTimeout(() => { this.timers.delete(t); job.go(); }, (rank * this.segmentSeconds * 1000) / 2);
      this.timers.add(t);
    }
  }

  /**
   * Playback is waiting: every segment hls.js waits for from p2p-media-loader comes over HTTP
   * now (once; an early fetch already under way is left to finish). p2p-media-loader looks at
   * its queue when the playhead moves (at most once a second), a playlist reloads or a peer
   * changes; a segment that was not yet urgent at its last look when the playhead stopped
   * would otherwise wait for ever (a finished match, or a live one between reloads).
   */
  rescue() {
    for (const [url, frag] of this.waiting) {
      const job = this.jobs.get(url);
      if (job && job.started) continue;
      this.rescued += 1;
      (job || this.job(frag, () => false, false)).go();
    }
  }

  /**
   * A fetch of `frag` over HTTP that `go()` starts unless `skip()` says it is no longer needed;
   * `early`: listed in `fetched` (fetched for the swarm, not because playback waited).
   */
  job(frag, skip, early = true) {
    let resolve;
    const job = { started: false, sn: frag.sn, promise: new Promise((r) => { resolve = r; }) };
    this.jobs.set(frag.url, job);
    job.go = () => {
      if (job.started) return;
      if (skip()) return resolve(null);
      job.started = true;
      job.t0 = performance.now();
      this.fetchVerified(frag.url).then((data) => {
        job.t1 = performance.now();
        if (data) {
          this.cache.put(frag.level, frag.sn, data, frag.start, frag.start + frag.duration);
          if (early) this.fetched.push(frag.url);
          if (this.fetched.length > 200) this.fetched.shift();
          const waiting = this.inflight.get(frag.url);
          if (waiting) waiting(data);
        }
        resolve(data);
      });
    };
    return job;
  }

  /** No loader waits for `url` any more. */
  forget(url) {
    this.inflight.delete(url);
    this.waiting.delete(url);
  }

  forgetOld(sn) {
    for (const [url, job] of this.jobs) if (job.sn < sn - 20) this.jobs.delete(url);
  }

  /** The early fetch of `url` if one has started (its promise: the bytes, or null). */
  started(url) {
    const job = this.jobs.get(url);
    return job && job.started ? job.promise : null;
  }

  /** When the early fetch of `url` started and ended (performance.now()), for hls.js's stats. */
  timing(url) {
    const job = this.jobs.get(url);
    return job && job.t1 ? { start: job.t0, end: job.t1 } : null;
  }

  destroy() {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.fetchers = 0;
  }
}

/**
 * hls.js fragment loader: the early bytes when this page fetched the segment early, otherwise
 * `Inner` (p2p-media-loader's loader), whose load the early bytes replace if they arrive first.
 */
export function earlyFirstLoader(Inner, early) {
  return class EarlyFirst {
    constructor(config) {
      this.inner = new Inner(config);
      this.stats = this.inner.stats;
      this.done = false;
    }

    load(context, config, callbacks) {
      this.context = context;
      this.config = config;
      const frag = context.frag;
      const ranged = context.rangeStart !== undefined || context.rangeEnd !== undefined;
      if (!frag || ranged || frag.sn === 'initSegment') return this.startInner(callbacks);
      early.consider(frag);
      const pending = early.started(context.url);
      if (!pending) return this.startInner(callbacks);
      this.callbacks = callbacks;
      pending.then((data) => {
        if (this.done) return;
        if (data) this.succeed(data, callbacks);
        else this.startInner(callbacks);
      });
    }

    startInner(callbacks) {
      this.callbacks = callbacks;
      const { context } = this;
      const url = context.url;
      if (context.frag) {
        early.cache.expectRequest(context.frag.level, context.frag.sn);
        early.waiting.set(url, context.frag);
        early.inflight.set(url, (data) => {
          if (this.done) return;
          this.done = true; // the inner loader's abort goes nowhere
          this.inner.abort();
          this.succeed(data, callbacks);
        });
      }
      const finish = () => {
        this.done = true;
        early.forget(url);
      };
      this.inner.load(context, this.config, {
        onSuccess: (...a) => { if (!this.done) { finish(); callbacks.onSuccess(...a); } },
        onError: (...a) => { if (!this.done) { finish(); callbacks.onError(...a); } },
        onTimeout: (...a) => { if (!this.done) { finish(); callbacks.onTimeout(...a); } },
        onAbort: (...a) => { if (!this.done) { finish(); callbacks.onAbort?.(...a); } },
        onProgress: callbacks.onProgress && ((...a) => { if (!this.done) callbacks.onProgress(...a); }),
      });
    }

    succeed(data, callbacks) {
      this.done = true;
      early.forget(this.context.url);
      // The HTTP fetch's own times: hls.js estimates bandwidth from them.
      const now = performance.now();
      const t = early.timing(this.context.url) || { start: now - 1, end: now };
      const s = this.stats;
      s.loading.start = t.start;
      s.loading.first = Math.min(t.start + 1, t.end);
      s.loading.end = t.end;
      s.loaded = s.total = data.byteLength;
      callbacks.onSuccess({ data, url: this.context.url }, s, this.context, undefined);
    }

    abort() {
      if (this.done) return;
      this.done = true; // the inner loader's own onAbort goes nowhere: hls.js hears it once, here
      early.forget(this.context?.url);
      this.stats.aborted = true;
      this.inner.abort();
      this.callbacks?.onAbort?.(this.stats, this.context, {});
    }

    destroy() {
      this.abort();
      this.inner.destroy();
    }
  };
}
