// The delivery policy's parts, without a browser: fetch-early's ranking, its fetches and the
// loader that hands hls.js the early bytes (web/player/early.js), the segment cache peers are
// served from (cache.js) and the policy's windows (policy.js).
// Run by tests/player_delivery.rs:  node web/test/delivery.mjs
import assert from 'node:assert/strict';
import { EarlyFetch, earlyFirstLoader, newPeerId } from '../player/early.js';
import { SegmentCache } from '../player/cache.js';
import { coreWindows, describe, policyOf } from '../player/policy.js';
import { sessionId } from '../player/telemetry.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ROOT = 'http://origin.test/final/main/360p/';
const frag = (sn, level = 0) => ({ url: `${ROOT}${sn}.ts`, sn, level, baseurl: `${ROOT}index.m3u8`, start: sn * 2, duration: 2 });

// 1. Rendezvous ranking: six viewers who all see each other agree, for every segment, on exactly
//    one first fetcher, and the work is shared.
{
  const ids = Array.from({ length: 6 }, () => newPeerId());
  assert.ok(ids.every((id) => id.length === 20 && id.startsWith('-SP0100-')), 'a WebTorrent peer ID is 20 characters');
  const viewers = ids.map((id) => {
    const e = new EarlyFetch({ selfId: id, fetchers: 1, segmentSeconds: 2, cache: null, fetchVerified: null });
    for (const other of ids) if (other !== id) e.addPeer(other);
    return e;
  });
  const firsts = new Map(ids.map((id) => [id, 0]));
  for (let sn = 1000; sn < 1600; sn++) {
    const ranks = viewers.map((v) => v.rank('/final/main/360p/index.m3u8', sn));
    assert.deepEqual([...ranks].sort(), [0, 1, 2, 3, 4, 5], `segment ${sn}: ranks ${ranks}`);
    firsts.set(ids[ranks.indexOf(0)], firsts.get(ids[ranks.indexOf(0)]) + 1);
  }
  for (const [id, n] of firsts) assert.ok(n > 60 && n < 150, `${id} fetched ${n} of 600 first`);
}

// 2. EarlyFetch: only the first of a neighbourhood fetches at once; a backup fetches later and
//    only when the segment has not reached it; what is fetched goes into the cache for peers.
function fetcherWithCache(rankWanted, fetchers, has = () => false) {
  const fetched = [];
  const cache = { put: (level, sn) => { cache.puts.push(sn); return true; }, has, puts: [] };
  const e = new EarlyFetch({
    selfId: 'self', fetchers, segmentSeconds: 0.1, cache,
    fetchVerified: async (url) => { fetched.push(url); return new Uint8Array([1, 2, 3]).buffer; },
  });
  // Peers whose scores put this page at rank `rankWanted` for segment 7.
  let n = 0;
  while (e.rank('/final/main/360p/index.m3u8', 7) !== rankWanted || e.peers.size < 3) {
    e.addPeer(`peer-${n++}`);
    if (e.rank('/final/main/360p/index.m3u8', 7) > rankWanted) e.peers.delete(`peer-${n - 1}`);
    assert.ok(n < 1000);
  }
  e.playlist({ fragments: [frag(6)] }, 0); // joined: segment 6 was there before
  return { e, fetched, cache };
}
{
  const { e, fetched, cache } = fetcherWithCache(0, 1);
  e.consider(frag(6));
  assert.equal(fetched.length, 0, 'a segment published before the page played is not fetched early');
  e.consider(frag(7));
  assert.deepEqual(fetched, [`${ROOT}7.ts`], 'the first of the neighbourhood fetches at once');
  assert.ok(await e.started(`${ROOT}7.ts`));
  assert.deepEqual(cache.puts, [7]);
  assert.deepEqual(e.fetched, [`${ROOT}7.ts`]);
}
{
  const { e, fetched } = fetcherWithCache(1, 1);
  e.consider(frag(7));
  await sleep(150);
  assert.equal(fetched.length, 0, 'with one early fetcher, the second in rank never fetches');
}
{
  const { e, fetched } = fetcherWithCache(1, 2);
  e.consider(frag(7));
  assert.equal(fetched.length, 0, 'a backup waits');
  await sleep(120);
  assert.deepEqual(fetched, [`${ROOT}7.ts`], 'a backup fetches after half a segment when nothing came');
}
{
  const { e, fetched } = fetcherWithCache(1, 2, () => true);
  e.consider(frag(7));
  await sleep(120);
  assert.equal(fetched.length, 0, 'a backup that got the segment from a peer does not fetch it');
}
{
  const { e, fetched } = fetcherWithCache(0, 0);
  e.consider(frag(7));
  assert.equal(fetched.length, 0, 'early_fetchers = 0: off');
  assert.equal(typeof e.age(`${ROOT}7.ts`), 'number', 'but the page still notes when it saw the segment');
}

// 3. The fragment loader: early bytes go to hls.js without p2p-media-loader; a p2p-media-loader
//    load under way is replaced when the early bytes arrive first, and hls.js hears one outcome.
class FakeInner {
  static made = [];
  constructor() { this.stats = { loading: { start: 0, first: 0, end: 0 }, loaded: 0, total: 0, aborted: false }; FakeInner.made.push(this); }
  load(context, config, callbacks) { this.callbacks = callbacks; this.loaded = true; }
  abort() { this.aborted = true; this.callbacks?.onAbort?.(this.stats, {}, {}); }
  destroy() {}
}
function hlsCallbacks() {
  const seen = [];
  return { seen, onSuccess: (r, stats) => seen.push(['success', r.data.byteLength, stats.loaded]), onError: () => seen.push(['error']), onTimeout: () => seen.push(['timeout']), onAbort: () => seen.push(['abort']) };
}
{
  const { e } = fetcherWithCache(0, 1);
  e.consider(frag(7));
  const Loader = earlyFirstLoader(FakeInner, e);
  const l = new Loader({});
  const cb = hlsCallbacks();
  l.load({ url: `${ROOT}7.ts`, frag: frag(7) }, {}, cb);
  await sleep(10);
  assert.deepEqual(cb.seen, [['success', 3, 3]], 'the early bytes, once');
  assert.ok(!FakeInner.made.at(-1).loaded, 'p2p-media-loader was not asked');
}
{
  // A backup (rank 1 of 2): hls.js asks for the segment before the backup's fetch starts, so
  // p2p-media-loader starts on it; then the backup's bytes arrive first.
  const { e, cache } = fetcherWithCache(1, 2);
  cache.expectRequest = () => {};
  let release;
  e.fetchVerified = () => new Promise((r) => { release = r; });
  const Loader = earlyFirstLoader(FakeInner, e);
  const l = new Loader({});
  const cb = hlsCallbacks();
  l.load({ url: `${ROOT}7.ts`, frag: frag(7) }, {}, cb);
  const inner = FakeInner.made.at(-1);
  assert.ok(inner.loaded, 'a segment whose early fetch has not started goes to p2p-media-loader');
  await sleep(120); // the backup's turn: its fetch starts
  assert.equal(typeof release, 'function');
  release(new Uint8Array(5).buffer);
  await sleep(5);
  assert.ok(inner.aborted, 'the p2p-media-loader load was taken over');
  assert.deepEqual(cb.seen, [['success', 5, 5]], 'hls.js heard only the success, not the abort');
  // hls.js aborting a load afterwards changes nothing.
  l.abort();
  assert.deepEqual(cb.seen, [['success', 5, 5]]);
}
{
  const e = new EarlyFetch({ selfId: 'self', fetchers: 1, segmentSeconds: 2, cache: { expectRequest: () => {} }, fetchVerified: null });
  const Loader = earlyFirstLoader(FakeInner, e);
  const l = new Loader({});
  const cb = hlsCallbacks();
  l.load({ url: `${ROOT}3.ts`, frag: frag(3) }, {}, cb);
  l.abort();
  assert.deepEqual(cb.seen, [['abort']], 'an abort reaches hls.js once');
}

{
  // Playback waits for a segment p2p-media-loader never fetches (its queue looks only when the
  // playhead moves): rescue() fetches it over HTTP once and hands it to hls.js; it is kept for
  // peers but not listed as fetched early.
  const { e, cache } = fetcherWithCache(1, 1); // not an early fetcher of segment 7
  cache.expectRequest = () => {};
  const fetched = [];
  e.fetchVerified = async (url) => { fetched.push(url); return new Uint8Array(4).buffer; };
  const Loader = earlyFirstLoader(FakeInner, e);
  const l = new Loader({});
  const cb = hlsCallbacks();
  l.load({ url: `${ROOT}7.ts`, frag: frag(7) }, {}, cb);
  const inner = FakeInner.made.at(-1);
  assert.ok(inner.loaded && fetched.length === 0, 'p2p-media-loader has it, and nothing is fetched early');
  e.rescue();
  e.rescue();
  await sleep(5);
  assert.deepEqual(fetched, [`${ROOT}7.ts`], 'fetched once, however often playback waits');
  assert.ok(inner.aborted, 'the p2p-media-loader load was taken over');
  assert.deepEqual(cb.seen, [['success', 4, 4]]);
  assert.deepEqual(cache.puts, [7], 'kept for peers');
  assert.deepEqual([e.rescued, e.fetched], [1, []]);
  e.rescue();
  await sleep(5);
  assert.equal(fetched.length, 1, 'nothing waits any more: nothing to rescue');
}

// 4. The cache: a segment of a stream p2p-media-loader has not named yet is played, not shared;
//    once named, puts are announced and evicted after the playhead passes.
{
  const cache = new SegmentCache({ keepBehind: 2 });
  const changed = [];
  cache.setSegmentChangeCallback((s) => changed.push(s));
  assert.equal(cache.put(0, 7, new ArrayBuffer(10), 14, 16), false);
  cache.expectRequest(0, 6);
  cache.onSegmentRequested('swarm', 'swarm-main-A', 6, 12, 14, 'main', true);
  assert.equal(cache.put(0, 7, new ArrayBuffer(10), 14, 16), true);
  assert.deepEqual(changed, ['swarm-main-A'], 'announced to the peers');
  assert.ok(cache.hasSegment('swarm', 'swarm-main-A', 7) && cache.has(0, 7));
  assert.deepEqual(cache.getStoredSegmentIds('swarm', 'swarm-main-A'), [7]);
  assert.equal((await cache.getSegmentData('swarm', 'swarm-main-A', 7)).byteLength, 10);
  cache.onPlaybackUpdated(17);
  await cache.storeSegment('swarm', 'swarm-main-A', 8, new ArrayBuffer(4), 16, 18, 'main', true);
  assert.ok(cache.has(0, 7), 'kept while the playhead is within keepBehind of its end');
  cache.onPlaybackUpdated(18.5);
  await cache.storeSegment('swarm', 'swarm-main-A', 9, new ArrayBuffer(4), 18, 20, 'main', true);
  assert.ok(!cache.has(0, 7), 'evicted once the playhead is keepBehind past its end');
  assert.deepEqual(cache.getStoredSegmentIds('swarm', 'swarm-main-A').sort(), [8, 9]);
}

// 5. The policy: a p2p.json's own, or the defaults for the segment duration; the windows.
{
  const signed = { segment: 2, behind_live: 7, urgent: 1.5, early_fetchers: 2, relay: 'keep', alone_after: 4, startup_wait: 0 };
  assert.deepEqual(policyOf({ delivery: signed }, 6), signed);
  const old = policyOf({ swarm: 'x' }, 1);
  assert.deepEqual([old.behind_live, old.urgent, old.early_fetchers], [3, 0.5, 1]);
  assert.deepEqual(coreWindows(signed), { highDemandTimeWindow: 1.5, httpDownloadTimeWindow: 1.5, p2pDownloadTimeWindow: 9 });
  assert.deepEqual(coreWindows({ ...signed, early_fetchers: 0 }).httpDownloadTimeWindow, 5);
  assert.deepEqual(coreWindows(signed, true).highDemandTimeWindow, 9, 'alone: everything to the edge is urgent');
  assert.match(describe(signed), /about 8 s behind live/);
}
// 6. The CMCD session ID: a version-4 UUID, with or without crypto.randomUUID (which only
//    secure contexts have).
{
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  assert.match(sessionId(), uuid);
  const saved = crypto.randomUUID;
  Object.defineProperty(crypto, 'randomUUID', { value: undefined, configurable: true });
  const a = sessionId();
  const b = sessionId();
  Object.defineProperty(crypto, 'randomUUID', { value: saved, configurable: true });
  assert.match(a, uuid);
  assert.notEqual(a, b);
}
console.log('delivery: ok');
