// swarmpack's player for fans, as a module any page can mount (web/watch.js is the page
// `serve` answers /watch with; the README shows a site embedding it):
//
//   import { mount } from 'https://swarm.example/.player/player.js';
//   const player = mount(document.querySelector('#match'), { match: 'final', token });
//
// One angle plays large, with angle and rung choice, and segments are shared between viewers'
// browsers with p2p-media-loader (WebRTC, signalled through the WebTorrent tracker the match's
// p2p.json names, itself signed: p2p.json.sig). Every segment, from a peer or over HTTP, is
// checked against its #EXT-X-SWARMPACK-SEGMENT tag (SHA-256 and the match's Ed25519
// signature, with the key `serve --keys` pins) before hls.js sees a byte. A failing peer
// segment is thrown away, fetched over HTTP instead, and its peer dropped (p2p-media-loader
// closes a peer whose segment fails validation); a failing HTTP segment is fetched once more,
// and if it fails again the player stops and says why rather than play it. The viewer's token
// goes only to key URIs a verified tag names: a playlist rewritten on the origin to send keys
// requests elsewhere gets no token. A browser without
// Ed25519 in WebCrypto checks with @noble/ed25519 (pure JS, from npm) and says so; one that
// cannot check at all (no secure context) turns peer-to-peer off for itself and says so.
//
// Everything (playlists, segments, p2p.json, the pinned key, hls.js and p2p-media-loader)
// comes from the swarmpack server this module was loaded from, which answers them with CORS.
/* global Hls */
// First: it watches RTCPeerConnection, which p2p-media-loader takes when it loads.
import { connections, relayBytes, relayClosed, relayPolicy, useIceServers } from './paths.js';
import { HlsJsP2PEngine } from './p2pml-hlsjs.js';
import { SegmentCache } from './cache.js';
import { EarlyFetch, earlyFirstLoader, newPeerId } from './early.js';
import { cmcdConfig, customData, rungOf, sessionId } from './telemetry.js';
import { coreWindows, describe, policyOf } from './policy.js';
import { MATCH_ID, fetchOk, keyErrorText, loadPubkey, parseAngles } from './shared.js';
import { SignedSegments, verifyDocument, verifyingLoader, verifySegment } from './segments.js';

const HERE = new URL('.', import.meta.url);
const ROOT = new URL('/', import.meta.url).href;
// How often the player reads the match's delivery policy again (p2p.json).
const POLICY_EVERY_MS = 30000;

// The delivery policy (how far behind live, what comes over HTTP and when) is the match's:
// the signed p2p.json carries it (web/player/policy.js), read again every 30 s. A viewer with no peer for
// `alone_after` plays as a plain HLS player (every segment of its buffer is urgent, so over
// HTTP at once) until a peer connects: behind a NAT that no peer gets through, or with no ICE
// servers, waiting for peers only stalls (scripts/swarm-lab, docs/PERFORMANCE.md).

const TEMPLATE = `
<div class="sp-stage">
  <video muted playsinline controls autoplay></video>
  <div class="sp-error" hidden></div>
</div>
<nav class="sp-controls">
  <span class="sp-angles" aria-label="Camera angle"></span>
  <label>Quality <select class="sp-rung"><option value="-1">auto</option></select></label>
  <span class="sp-p2p" data-state="pending">peer-to-peer…</span>
</nav>
<section class="sp-stats" aria-label="Delivery">
  <dl>
    <dt>From peers</dt><dd class="sp-share">–</dd>
    <dt>Peers</dt><dd class="sp-peers">0</dd>
    <dt>Through TURN relay</dt><dd class="sp-relay">–</dd>
    <dt>Rejected from peers</dt><dd class="sp-rejected">0</dd>
    <dt>Stalls</dt><dd class="sp-stalls">0</dd>
    <dt>Behind live</dt><dd class="sp-behind">–</dd>
  </dl>
  <p class="sp-policy"></p>
  <p class="sp-notice" hidden></p>
</section>`;

let hlsLoading = null;
/** hls.js (a classic script, window.Hls) from this server, loaded once per page. */
function loadHls() {
  if (window.Hls) return Promise.resolve();
  hlsLoading ??= new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = new URL('hls.min.js', HERE).href;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`${s.src} did not load`));
    document.head.append(s);
  });
  return hlsLoading;
}

function addStylesheet() {
  const href = new URL('player.css', HERE).href;
  if ([...document.styleSheets].some((s) => s.href === href)) return;
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = href;
  document.head.append(link);
}

/**
 * Mounts a player for `options.match` in `element` and returns it at once; it starts playing
 * as soon as the match is on the origin (it retries until then).
 *
 * options: `match` (the match ID), `token` (a viewer token: keys need one), `angle` (the one to
 * start with; the first by default), `pin` (hex SHA-256 of the match key's SPKI DER: refuse a
 * server whose pinned key differs), `telemetry` (false: send no CMCD reports, whatever the
 * match's p2p.json says).
 *
 * The returned player has `stats` (CONTRACT.md: httpBytes, p2pBytes, p2pRejected, peers,
 * stalls, stallSeconds, behindLiveSeconds, playing, relayBytes: the part of p2pBytes that came
 * through a TURN relay), `connections()` (the path each WebRTC connection took), `verifiedPlayed`/`unverifiedPlayed`/
 * `playedBytes` (what hls.js was handed, checked again on its own), `startupSeconds`,
 * `play(angle)`, `destroy()`, and `validate(url, range, bytes)`, the check every peer segment
 * passes.
 */
export function mount(element, options = {}) {
  addStylesheet();
  element.classList.add('swarmpack-player');
  element.innerHTML = TEMPLATE;
  const $ = (cls) => element.querySelector(`.sp-${cls}`);
  const video = $('stage video');
  const stats = {
    httpBytes: 0,
    p2pBytes: 0,
    p2pRejected: 0,
    peers: 0,
    stalls: 0,
    stallSeconds: 0,
    behindLiveSeconds: null,
    playing: false,
    // HTTP segments that failed their check (each is refetched once, then playback stops).
    httpRejected: 0,
    // Bytes from peers that came through a TURN relay: part of p2pBytes, but they cost the
    // operator like HTTP and are not offload.
    relayBytes: 0,
  };
  const state = { token: options.token || null, key: null, p2p: null, policy: policyOf(null, 2), iceServers: [], hls: null, angle: null, early: null, timers: [], stopped: false, alone: false, peerlessSince: performance.now(), reporter: null };
  // This page's WebTorrent peer ID: fetch-early ranks viewers by it (web/player/early.js).
  const selfId = newPeerId();
  // Every signed segment of the playlists loaded; the token goes only to key URLs they vouch for.
  const segments = new SignedSegments(ROOT, () => state.key);
  const httpFailures = new Map(); // segment URL -> failed HTTP checks

  const player = {
    stats,
    verifiedPlayed: 0,
    unverifiedPlayed: 0,
    playedBytes: 0,
    // Seconds from the page's start to the first frame playing, and the longest single stall
    // after it (benchmarks).
    startupSeconds: null,
    longestStallSeconds: 0,
    // Times the player went to plain HLS for want of peers, or back to the swarm's policy.
    aloneSwitches: 0,
    // This page's peer ID, the URLs of the segments it fetched early for its peers, and the
    // newest 200 segments p2p-media-loader took from peers and over HTTP ({url, peer, ms: after
    // the page saw it published}): what tests and the lab check fetch-early by.
    peerId: selfId,
    early: () => (state.early ? [...state.early.fetched] : []),
    // Where this player reports what its fan experiences (telemetry.js), or null: off.
    telemetry: null,
    // This player's CMCD session ID (a random UUID, the collector's only name for it).
    sessionId: sessionId(),
    // Times the match's delivery policy changed while this page played (followPolicy).
    policyChanges: 0,
    // Segments fetched over HTTP because playback waited for them (early.js, rescue()).
    rescued: () => (state.early ? state.early.rescued : 0),
    fromPeers: [],
    fromHttp: [],
    validate: async (url, _range, data) => {
      const entry = segments.entry(url);
      const ok = await verifySegment(entry, data, state.key);
      // A segment whose tag this page has not read yet is not taken either, but it is not
      // the peer's fault.
      if (!ok && entry) stats.p2pRejected += 1;
      return ok;
    },
    // The check of every segment fetched over HTTP: refetched once, then playback stops.
    validateHttp: async (url, _range, data) => {
      const entry = segments.entry(url);
      if (await verifySegment(entry, data, state.key)) return true;
      const failures = (httpFailures.get(url) || 0) + 1;
      httpFailures.set(url, failures);
      stats.httpRejected += 1;
      if (failures >= 2) {
        const name = entry ? entry.path : new URL(url).pathname.slice(1);
        stopWithError(
          `${name}: the origin's bytes do not match ${entry ? 'its signed tag' : 'any signed tag'} (fetched twice). ` +
          'Playback stopped rather than play them: the origin holds bytes the match did not sign.',
          'tamper',
        );
      }
      return false;
    },
    play: (angle) => play(angle),
    // Each WebRTC connection that formed: {path: 'direct'|'relay', local, remote, received, open}.
    connections: () => connections(),
    // Relayed connections closed because a direct one existed (TURN is the last resort).
    relayClosed: () => relayClosed(),
    destroy: () => {
      for (const t of state.timers) clearInterval(t);
      if (state.early) state.early.destroy();
      if (state.hls) state.hls.destroy();
      state.hls = null;
      element.innerHTML = '';
    },
  };

  function stopWithError(text, kind) {
    if (state.stopped) return;
    state.stopped = true;
    $('error').hidden = false;
    $('error').textContent = text;
    $('error').dataset.kind = kind;
    if (state.hls) state.hls.stopLoad();
    video.pause();
  }

  function notice(text) {
    $('notice').hidden = !text;
    $('notice').textContent = text || '';
  }

  function p2pState(on, text) {
    $('p2p').dataset.state = on ? 'on' : 'off';
    $('p2p').textContent = text;
  }

  function showStats() {
    const total = stats.httpBytes + stats.p2pBytes;
    $('share').textContent = total ? `${Math.round((100 * stats.p2pBytes) / total)}%` : '–';
    $('peers').textContent = String(stats.peers);
    $('relay').textContent = stats.p2pBytes ? `${Math.round((100 * stats.relayBytes) / stats.p2pBytes)}% of peer bytes` : '–';
    $('rejected').textContent = String(stats.p2pRejected);
    $('stalls').textContent = stats.stalls ? `${stats.stalls} (${stats.stallSeconds.toFixed(1)} s)` : '0';
    $('behind').textContent = stats.behindLiveSeconds === null ? '–' : `${stats.behindLiveSeconds.toFixed(1)} s`;
  }

  function watchPlayback() {
    let stalledAt = null;
    let started = false;
    video.addEventListener('playing', () => {
      if (!started) player.startupSeconds = performance.now() / 1000;
      started = true;
      stats.playing = true;
      if (stalledAt !== null) {
        const stalled = (performance.now() - stalledAt) / 1000;
        stats.stallSeconds += stalled;
        player.longestStallSeconds = Math.max(player.longestStallSeconds, stalled);
      }
      stalledAt = null;
    });
    video.addEventListener('waiting', () => {
      stats.playing = false;
      if (started && stalledAt === null) {
        stalledAt = performance.now();
        stats.stalls += 1;
      }
    });
    state.timers.push(setInterval(() => {
      // Waiting half a second for a segment p2p-media-loader has not fetched: it comes over
      // HTTP now (web/player/early.js, rescue()).
      if (stalledAt !== null && performance.now() - stalledAt >= 500 && state.early) state.early.rescue();
      const date = state.hls && state.hls.playingDate;
      if (date) stats.behindLiveSeconds = (Date.now() - date.getTime()) / 1000;
      // Data-channel bytes over relayed connections, as many as peers gave at most.
      stats.relayBytes = Math.min(relayBytes(), stats.p2pBytes);
      aloneOrNot();
      showStats();
      if (state.reporter && state.hls) state.reporter.updateCustomData(customData(player, rungOf(state.hls.levels[state.hls.currentLevel])));
    }, 500));
  }

  /** Plain HLS while no peer is connected for `alone_after`; the swarm's policy again once one is. */
  function aloneOrNot() {
    const hls = state.hls;
    if (!hls || !hls.p2pEngine) return;
    const now = performance.now();
    if (stats.peers > 0) state.peerlessSince = null;
    else state.peerlessSince ??= now;
    const alone = state.peerlessSince !== null && now - state.peerlessSince >= state.policy.alone_after * 1000;
    if (alone === state.alone) return;
    state.alone = alone;
    player.aloneSwitches += 1;
    hls.p2pEngine.applyDynamicConfig({ core: coreWindows(state.policy, alone) });
    // Alone, p2p-media-loader fetches every new segment over HTTP itself: an early fetch
    // would fetch it twice.
    if (state.early) state.early.fetchers = alone ? 0 : state.earlyFetchers;
  }

  function playerConfig(cache) {
    const p = state.policy;
    const p2pOn = Boolean(state.key && state.p2p && state.p2p.trackers.length);
    return {
      // What p2p-media-loader leaves to hls.js's own loader is checked too.
      loader: state.key ? verifyingLoader(Hls.DefaultConfig.loader, (url, data) => player.validateHttp(url, undefined, data)) : Hls.DefaultConfig.loader,
      liveSyncDuration: p.behind_live,
      // Back to the target after a stall, a little faster than real time.
      maxLiveSyncPlaybackRate: 1.1,
      // Transmuxing on the main thread: hls.js then keeps each loaded segment's bytes (a
      // worker would take them), so the player can check what it was handed (FRAG_LOADED).
      enableWorker: false,
      // The token only to a key URL a verified tag names.
      xhrSetup: segments.xhrSetup(() => state.token),
      cmcd: player.telemetry ? cmcdConfig({
        url: player.telemetry,
        sessionId: player.sessionId,
        contentId: `${options.match}/${state.angle}`,
        onReporter: (r) => { state.reporter = r; },
      }) : undefined,
      p2p: {
        core: {
          isP2PDisabled: !p2pOn,
          swarmId: state.p2p ? `${state.p2p.swarm}/${state.angle}` : undefined,
          announceTrackers: state.p2p ? state.p2p.trackers : [],
          trackerClientVersionPrefix: selfId,
          ...coreWindows(p),
          // The first frame does not wait for the swarm unless the match says so.
          httpDownloadInitialTimeoutMs: 1000 * p.startup_wait,
          // Segments this page holds for its peers, including the ones it fetched early.
          customSegmentStorageFactory: () => cache,
          validateP2PSegment: (url, range, data) => player.validate(url, range, data),
          // Without a key nothing can be checked (the page says so); with one, nothing
          // unchecked reaches hls.js, from peers or from the origin.
          validateHTTPSegment: state.key ? (url, range, data) => player.validateHttp(url, range, data) : undefined,
          httpErrorRetries: 1,
          // A peer stays connected through slow transfers (each gives up after 2 s without a
          // byte and the segment comes another way): on a lossy link with a thin uplink the
          // default, 3 such timeouts, dropped every peer of some viewers within a minute, and a
          // viewer without peers plays from the origin (scripts/swarm-lab).
          p2pErrorRetries: 20,
          // The STUN servers of the signed p2p.json, and TURN with this viewer's credentials
          // from the key server (none: only peers on one network can connect).
          rtcConfig: { iceServers: state.iceServers },
        },
        onHlsJsCreated: (hls) => {
          hls.p2pEngine.addEventListener('onChunkDownloaded', (bytes, source) => {
            if (source === 'p2p') stats.p2pBytes += bytes;
            else stats.httpBytes += bytes;
          });
          hls.p2pEngine.addEventListener('onPeerConnect', ({ peerId, streamType }) => {
            stats.peers += 1;
            if (streamType === 'main' && state.early) state.early.addPeer(peerId);
          });
          hls.p2pEngine.addEventListener('onPeerClose', ({ peerId }) => {
            stats.peers = Math.max(0, stats.peers - 1);
            if (state.early) state.early.removePeer(peerId);
          });
          hls.p2pEngine.addEventListener('onSegmentLoaded', ({ segmentUrl, downloadSource, peerId }) => {
            // Where each segment came from, and how long after this page saw it published.
            const ms = state.early ? state.early.age(segmentUrl) : null;
            const log = downloadSource === 'p2p' ? player.fromPeers : player.fromHttp;
            log.push({ url: segmentUrl, peer: peerId, ms });
            if (log.length > 200) log.shift();
          });
        },
      },
    };
  }

  /** A segment over HTTP for fetch-early: its bytes if they pass the check every HTTP segment passes, else null. */
  async function fetchEarly(url) {
    try {
      const r = await fetch(url);
      if (!r.ok) return null;
      const data = await r.arrayBuffer();
      stats.httpBytes += data.byteLength;
      return (await player.validateHttp(url, undefined, data)) ? data : null;
    } catch {
      return null;
    }
  }

  function onLevelLoaded(data) {
    const text = data.networkDetails && data.networkDetails.responseText;
    if (typeof text === 'string') {
      segments.addPlaylist(text, data.details.url);
    }
  }

  function onError(hls, data) {
    const keyFail = data.details === Hls.ErrorDetails.KEY_LOAD_ERROR || data.details === Hls.ErrorDetails.KEY_LOAD_TIMEOUT;
    if (keyFail) {
      const code = (data.response && data.response.code) || (data.networkDetails && data.networkDetails.status);
      $('error').hidden = false;
      $('error').textContent = keyErrorText(code, false);
      $('error').dataset.kind = 'key';
    }
    if (!data.fatal || state.stopped) return;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
    else setTimeout(() => state.hls === hls && hls.startLoad(), keyFail ? 5000 : 2000);
  }

  function play(angle) {
    if (state.hls) state.hls.destroy();
    state.alone = false;
    state.peerlessSince = performance.now();
    state.angle = angle;
    for (const b of element.querySelectorAll('.sp-angles button')) b.setAttribute('aria-pressed', String(b.dataset.angle === angle));
    if (state.early) state.early.destroy();
    const p = state.policy;
    const cache = new SegmentCache({ keepBehind: Math.max(p.urgent, 2 * p.segment) });
    const p2pOn = Boolean(state.key && state.p2p && state.p2p.trackers.length);
    state.earlyFetchers = p2pOn ? p.early_fetchers : 0;
    const early = new EarlyFetch({
      selfId,
      fetchers: state.earlyFetchers,
      segmentSeconds: p.segment,
      cache,
      fetchVerified: (url) => fetchEarly(url),
    });
    state.early = early;
    const HlsWithP2P = HlsJsP2PEngine.injectMixin(Hls);
    const hls = new HlsWithP2P(playerConfig(cache));
    // hls.js asks this loader for every segment: early bytes when this page fetched them,
    // p2p-media-loader otherwise.
    hls.config.fLoader = earlyFirstLoader(hls.config.fLoader, early);
    state.hls = hls;
    hls.on(Hls.Events.LEVEL_LOADED, (_, data) => onLevelLoaded(data));
    hls.on(Hls.Events.LEVEL_UPDATED, (_, data) => early.playlist(data.details, data.level));
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      const sel = $('rung');
      sel.length = 1;
      hls.levels.forEach((level, i) => sel.append(new Option(`${level.height}p · ${Math.round(level.bitrate / 1000)} kb/s`, String(i))));
      sel.onchange = () => {
        hls.currentLevel = Number(sel.value);
      };
    });
    hls.on(Hls.Events.FRAG_LOADED, async (_, data) => {
      const payload = data.payload;
      if (!payload || !state.key) return;
      player.playedBytes += payload.byteLength;
      const ok = await segments.check(data.frag.url, payload);
      if (ok) player.verifiedPlayed += 1;
      else player.unverifiedPlayed += 1;
    });
    hls.on(Hls.Events.FRAG_DECRYPTED, () => {
      $('error').hidden = true;
    });
    hls.on(Hls.Events.ERROR, (_, data) => onError(hls, data));
    hls.loadSource(new URL(`${options.match}/${angle}/master.m3u8`, ROOT).href);
    hls.attachMedia(video);
    video.play().catch(() => {});
  }

  /** The target duration of the match's first media playlist (2 s when it cannot be read). */
  async function segmentSeconds(match, master) {
    try {
      const any = parseAngles(master)[0];
      const media = await fetchOk(new URL(`${match}/${any}/master.m3u8`, ROOT));
      const first = /^([^#\s][^\n]*index\.m3u8)$/m.exec(media);
      const text = first ? await fetchOk(new URL(`${match}/${any}/${first[1]}`, ROOT)) : '';
      const target = /#EXT-X-TARGETDURATION:(\d+)/.exec(text);
      if (target) return Number(target[1]);
    } catch {
      // keep the default
    }
    return 2;
  }

  /**
   * The ICE servers: the STUN entries of the signed p2p.json, then, when it names an `ice` URL
   * (TURN), the key server's answer for this viewer's token, refreshed before its ttl ends. The
   * token goes only to that URL, which the match key vouched for.
   */
  async function loadIceServers() {
    const doc = state.p2p;
    // STUN until the key server answers (and after, should a refresh fail: the credentials
    // from before stay in use until it succeeds).
    state.iceServers = state.iceServers.length ? state.iceServers : (doc.ice_servers || []).filter((s) => !s.credentials).map((s) => ({ urls: s.urls }));
    if (!doc.ice || !state.token) return;
    try {
      const r = await fetch(doc.ice, { headers: { Authorization: `Bearer ${state.token}` }, cache: 'no-store' });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const answer = await r.json();
      state.iceServers = answer.iceServers;
      useIceServers(answer.iceServers);
      if (state.iceNotice) notice(null);
      state.iceNotice = false;
      const refresh = Math.max(60, 0.8 * answer.ttl) * 1000;
      state.timers.push(setTimeout(loadIceServers, refresh));
    } catch (e) {
      notice(`No TURN relay for this viewer (${doc.ice}: ${e.message}): peers behind strict NATs cannot be reached.`);
      state.iceNotice = true;
      state.timers.push(setTimeout(loadIceServers, 60000));
    }
  }

  /**
   * The match's delivery policy again (p2p.json, signed): an operator or the controller may
   * change it during the match (README "Watching the audience"); a change applies at once,
   * and an unsigned or unreadable document changes nothing. Only `delivery` is followed:
   * trackers, ICE servers and telemetry apply from the next page load.
   */
  async function followPolicy(match) {
    let doc;
    try {
      const [bytes, sig] = await Promise.all([
        fetchOk(new URL(`${match}/p2p.json`, ROOT), 'bytes'),
        fetchOk(new URL(`${match}/p2p.json.sig`, ROOT), 'bytes'),
      ]);
      if (!(await verifyDocument(bytes, sig, state.key))) return;
      doc = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return;
    }
    const policy = policyOf(doc, state.policy.segment);
    if (JSON.stringify(policy) === JSON.stringify(state.policy)) return;
    state.policy = policy;
    player.policyChanges += 1;
    relayPolicy(policy.relay);
    $('policy').textContent = describe(policy);
    const hls = state.hls;
    if (!hls) return;
    hls.config.liveSyncDuration = policy.behind_live;
    const p2pOn = Boolean(state.key && state.p2p && state.p2p.trackers.length);
    state.earlyFetchers = p2pOn ? policy.early_fetchers : 0;
    if (state.early && !state.alone) state.early.fetchers = state.earlyFetchers;
    if (hls.p2pEngine) hls.p2pEngine.applyDynamicConfig({ core: coreWindows(policy, state.alone) });
  }

  async function start() {
    const match = options.match;
    if (!match || !MATCH_ID.test(match)) {
      notice('No match given: the match ID is a-z, 0-9, "-" and "_", up to 32 characters.');
      return;
    }
    // Everything the first frame needs, at once: hls.js, the master playlist, the pinned key
    // and the signed p2p.json (startup is a goal: docs/PERFORMANCE.md).
    const pubLoad = loadPubkey(options.pin);
    const docLoad = Promise.all([
      fetchOk(new URL(`${match}/p2p.json`, ROOT), 'bytes'),
      fetchOk(new URL(`${match}/p2p.json.sig`, ROOT), 'bytes'),
    ]);
    docLoad.catch(() => {});
    let master;
    try {
      [, master] = await Promise.all([loadHls(), fetchOk(new URL(`${match}/master.m3u8`, ROOT))]);
    } catch (e) {
      notice(`Waiting for match ${match} (${e.message}). Retrying…`);
      state.timers.push(setTimeout(start, 2000));
      return;
    }
    if (!Hls.isSupported()) {
      notice('This browser cannot play this stream (no Media Source Extensions).');
      return;
    }
    notice(null);
    const pub = await pubLoad;
    state.key = pub.key || null;
    let p2pProblem = 'the match names no WebRTC tracker';
    try {
      const [doc, sig] = await docLoad;
      // It names the trackers every viewer's browser contacts: only the match key's word counts.
      if (await verifyDocument(doc, sig, state.key)) state.p2p = JSON.parse(new TextDecoder().decode(doc));
      else p2pProblem = 'p2p.json is not signed with this match\'s key';
    } catch (e) {
      state.p2p = null;
      if (/p2p\.json\.sig: HTTP/.test(e.message)) p2pProblem = 'p2p.json is not signed (no p2p.json.sig)';
    }
    // A match packaged before [delivery] gets the defaults for its segment duration.
    const delivery = state.p2p && state.p2p.delivery;
    const [seconds] = await Promise.all([
      delivery ? delivery.segment : segmentSeconds(match, master),
      state.p2p ? loadIceServers() : null,
    ]);
    state.policy = policyOf(state.p2p, seconds);
    const collector = state.p2p && typeof state.p2p.telemetry === 'string' && state.p2p.telemetry;
    player.telemetry = collector && options.telemetry !== false ? `${collector}/${match}` : null;
    relayPolicy(state.policy.relay);
    if (!state.key) {
      p2pState(false, 'peer-to-peer off: this browser cannot check segment signatures');
      notice(`Everything comes from the origin: ${pub.reason}`);
    } else if (!state.p2p || !state.p2p.trackers.length) {
      p2pState(false, `peer-to-peer off: ${p2pProblem}`);
    } else {
      p2pState(true, `peer-to-peer on · every peer segment verified${pub.via === 'WebCrypto' ? '' : ` (${pub.via})`}`);
    }
    $('policy').textContent = describe(state.policy);
    const angles = parseAngles(master);
    for (const angle of angles) {
      const b = document.createElement('button');
      b.type = 'button';
      b.dataset.angle = angle;
      b.textContent = angle;
      b.onclick = () => play(angle);
      $('angles').append(b);
    }
    watchPlayback();
    play(angles.includes(options.angle) ? options.angle : angles[0]);
    if (state.p2p) state.timers.push(setInterval(() => followPolicy(match), POLICY_EVERY_MS));
  }

  start();
  return player;
}
