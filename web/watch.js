// swarmpack's player for fans: one angle large, angle and rung choice, and segments shared
// between viewers' browsers with p2p-media-loader (WebRTC, signalled through the WebTorrent
// tracker the match's p2p.json names). Every segment a peer sends is checked against its
// #EXT-X-SWARMPACK-SEGMENT tag (SHA-256 and the match's Ed25519 signature, with the key
// `serve --keys` pins) before hls.js sees a byte; a failing one is thrown away, fetched over
// HTTP instead, and its peer dropped. A browser without Ed25519 in WebCrypto turns peer-to-peer
// off for itself and says so. Counters: window.swarmpack.stats (CONTRACT.md).
/* global Hls */
import { HlsJsP2PEngine } from '/.watch/p2pml-hlsjs.js';
import { MATCH_ID, fetchOk, getToken, keyErrorText, loadPubkey, parseAngles } from '/.preview/shared.js';
import { parseMediaPlaylist, verifySegment } from '/.watch/segments.js';

const $ = (sel) => document.querySelector(sel);
// Policy, in segments of the match (docs/PERFORMANCE.md has the measurement behind it): the
// player sits LIVE_SYNC segments behind the live edge. The next URGENT segment after the
// playhead comes over HTTP at once when no peer has it. Up to SHARED segments ahead, a
// segment no peer has yet is fetched over HTTP by one viewer in about N, chosen at random by
// p2p-media-loader, and the others take it from peers. Everything up to the live edge that a
// peer has comes from peers.
const LIVE_SYNC = 8;
const URGENT = 1;
const SHARED = 7;

const stats = {
  httpBytes: 0,
  p2pBytes: 0,
  p2pRejected: 0,
  peers: 0,
  stalls: 0,
  stallSeconds: 0,
  behindLiveSeconds: null,
  playing: false,
};
const segments = new Map(); // segment URL -> its tag (segments.js)
const state = { match: null, token: null, key: null, p2p: null, hls: null, angle: null, keyUris: new Set() };

window.swarmpack = {
  stats,
  // What hls.js was handed, checked on its own against the signed tags (after the loader,
  // whichever source it used): a segment counted unverified here reached the player.
  verifiedPlayed: 0,
  unverifiedPlayed: 0,
  playedBytes: 0,
  // Seconds from the page's start to the first frame playing (benchmarks).
  startupSeconds: null,
  /** The check every peer segment passes before hls.js may have it. */
  validate: async (url, _range, data) => {
    const entry = segments.get(url);
    const ok = await verifySegment(entry, data, state.key);
    // A segment whose tag this page has not read yet is not taken either, but it is not the
    // peer's fault.
    if (!ok && entry) stats.p2pRejected += 1;
    return ok;
  },
};

function notice(text) {
  $('#notice').hidden = !text;
  $('#notice').textContent = text || '';
}

function p2pState(on, text) {
  const pill = $('#p2p-state');
  pill.dataset.state = on ? 'on' : 'off';
  pill.textContent = text;
}

function showStats() {
  const total = stats.httpBytes + stats.p2pBytes;
  $('#share').textContent = total ? `${Math.round((100 * stats.p2pBytes) / total)}%` : '–';
  $('#peers').textContent = String(stats.peers);
  $('#rejected').textContent = String(stats.p2pRejected);
  $('#stalls').textContent = stats.stalls ? `${stats.stalls} (${stats.stallSeconds.toFixed(1)} s)` : '0';
  $('#behind').textContent = stats.behindLiveSeconds === null ? '–' : `${stats.behindLiveSeconds.toFixed(1)} s`;
}

function watchPlayback(video) {
  let stalledAt = null;
  let started = false;
  video.addEventListener('playing', () => {
    if (!started) window.swarmpack.startupSeconds = performance.now() / 1000;
    started = true;
    stats.playing = true;
    if (stalledAt !== null) stats.stallSeconds += (performance.now() - stalledAt) / 1000;
    stalledAt = null;
  });
  video.addEventListener('waiting', () => {
    stats.playing = false;
    if (started && stalledAt === null) {
      stalledAt = performance.now();
      stats.stalls += 1;
    }
  });
  setInterval(() => {
    const date = state.hls && state.hls.playingDate;
    if (date) stats.behindLiveSeconds = (Date.now() - date.getTime()) / 1000;
    showStats();
  }, 500);
}

function playerConfig(segmentSeconds) {
  const p2pOn = Boolean(state.key && state.p2p && state.p2p.trackers.length);
  return {
    liveSyncDurationCount: LIVE_SYNC,
    // Transmuxing on the main thread: hls.js then keeps each loaded segment's bytes (a worker
    // would take them), so the page can check what it was handed (FRAG_LOADED).
    enableWorker: false,
    xhrSetup: (xhr, url) => {
      if (state.token && state.keyUris.has(url)) {
        if (!xhr.readyState) xhr.open('GET', url, true);
        xhr.setRequestHeader('Authorization', `Bearer ${state.token}`);
      }
    },
    p2p: {
      core: {
        isP2PDisabled: !p2pOn,
        swarmId: state.p2p ? `${state.p2p.swarm}/${state.angle}` : undefined,
        announceTrackers: state.p2p ? state.p2p.trackers : [],
        highDemandTimeWindow: URGENT * segmentSeconds,
        httpDownloadTimeWindow: SHARED * segmentSeconds,
        p2pDownloadTimeWindow: LIVE_SYNC * segmentSeconds,
        // A joining viewer waits up to one segment for peers before its first HTTP fetch:
        // the segments it starts with are ones earlier viewers already hold.
        httpDownloadInitialTimeoutMs: 1000 * segmentSeconds,
        validateP2PSegment: (url, range, data) => window.swarmpack.validate(url, range, data),
        // Loopback and LAN peers need no STUN server; none is contacted.
        rtcConfig: { iceServers: [] },
      },
      onHlsJsCreated: (hls) => {
        hls.p2pEngine.addEventListener('onChunkDownloaded', (bytes, source) => {
          if (source === 'p2p') stats.p2pBytes += bytes;
          else stats.httpBytes += bytes;
        });
        hls.p2pEngine.addEventListener('onPeerConnect', () => {
          stats.peers += 1;
        });
        hls.p2pEngine.addEventListener('onPeerClose', () => {
          stats.peers = Math.max(0, stats.peers - 1);
        });
      },
    },
  };
}

function play(angle) {
  if (state.hls) state.hls.destroy();
  state.angle = angle;
  for (const b of document.querySelectorAll('#angles button')) b.setAttribute('aria-pressed', String(b.dataset.angle === angle));
  const HlsWithP2P = HlsJsP2PEngine.injectMixin(Hls);
  const hls = new HlsWithP2P(playerConfig(state.segmentSeconds));
  state.hls = hls;
  const root = `${location.origin}/`;
  hls.on(Hls.Events.LEVEL_LOADED, (_, data) => {
    const text = data.networkDetails && data.networkDetails.responseText;
    if (typeof text === 'string') {
      for (const [url, entry] of parseMediaPlaylist(text, data.details.url, root)) {
        if (!segments.has(url)) segments.set(url, entry);
      }
    }
    for (const frag of data.details.fragments) {
      const uri = frag.decryptdata && frag.decryptdata.uri;
      if (uri) state.keyUris.add(uri);
    }
  });
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    const sel = $('#rung');
    sel.length = 1;
    hls.levels.forEach((level, i) => sel.append(new Option(`${level.height}p · ${Math.round(level.bitrate / 1000)} kb/s`, String(i))));
    sel.onchange = () => {
      hls.currentLevel = Number(sel.value);
    };
  });
  hls.on(Hls.Events.FRAG_LOADED, async (_, data) => {
    const payload = data.payload;
    if (!payload || !state.key) return;
    window.swarmpack.playedBytes += payload.byteLength;
    const ok = await verifySegment(segments.get(data.frag.url), payload, state.key);
    if (ok) window.swarmpack.verifiedPlayed += 1;
    else window.swarmpack.unverifiedPlayed += 1;
  });
  hls.on(Hls.Events.FRAG_DECRYPTED, () => {
    $('#error').hidden = true;
  });
  hls.on(Hls.Events.ERROR, (_, data) => {
    const keyFail = data.details === Hls.ErrorDetails.KEY_LOAD_ERROR || data.details === Hls.ErrorDetails.KEY_LOAD_TIMEOUT;
    if (keyFail) {
      const code = (data.response && data.response.code) || (data.networkDetails && data.networkDetails.status);
      $('#error').hidden = false;
      $('#error').textContent = keyErrorText(code, false);
      $('#error').dataset.kind = 'key';
    }
    if (!data.fatal) return;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
    else setTimeout(() => state.hls === hls && hls.startLoad(), keyFail ? 5000 : 2000);
  });
  hls.loadSource(`/${state.match}/${angle}/master.m3u8`);
  hls.attachMedia($('#video'));
  $('#video').play().catch(() => {});
}

async function start() {
  const match = new URLSearchParams(location.search).get('match');
  if (!match || !MATCH_ID.test(match)) {
    notice('Add ?match=ID to the address (a-z, 0-9, "-" and "_", up to 32 characters).');
    return;
  }
  if (!window.Hls || !Hls.isSupported()) {
    notice('This browser cannot play this stream (no Media Source Extensions).');
    return;
  }
  state.match = match;
  document.title = `${match} · swarmpack`;
  let master;
  try {
    master = await fetchOk(`/${match}/master.m3u8`);
  } catch (e) {
    notice(`Waiting for match ${match} (${e.message}). Retrying…`);
    setTimeout(start, 2000);
    return;
  }
  notice(null);
  const tok = await getToken(match);
  state.token = tok.token;
  const pub = await loadPubkey();
  state.key = pub.key || null;
  try {
    state.p2p = JSON.parse(await fetchOk(`/${match}/p2p.json`));
  } catch {
    state.p2p = null;
  }
  state.segmentSeconds = 2;
  try {
    const any = parseAngles(master)[0];
    const media = await fetchOk(`/${match}/${any}/master.m3u8`);
    const first = /^([^#\s][^\n]*index\.m3u8)$/m.exec(media);
    const text = first ? await fetchOk(`/${match}/${any}/${first[1]}`) : '';
    const target = /#EXT-X-TARGETDURATION:(\d+)/.exec(text);
    if (target) state.segmentSeconds = Number(target[1]);
  } catch {
    // keep the default
  }
  if (!state.key) {
    p2pState(false, 'peer-to-peer off: this browser cannot check segment signatures');
    notice(`Everything comes from the origin: ${pub.reason}`);
  } else if (!state.p2p || !state.p2p.trackers.length) {
    p2pState(false, 'peer-to-peer off: the match names no WebRTC tracker');
  } else {
    p2pState(true, 'peer-to-peer on · every peer segment verified');
  }
  const s = state.segmentSeconds;
  $('#policy').textContent =
    `The player sits about ${LIVE_SYNC * s} s (${LIVE_SYNC} segments) behind live, and at the ` +
    `start waits up to ${s} s for peers. The next ${URGENT * s} s after the playhead come over ` +
    `HTTP when no peer has them. Up to ${SHARED * s} s ahead, one viewer in a few fetches a new ` +
    'segment over HTTP and the others take it from peers; everything further ahead that a peer ' +
    'has comes from peers.';
  const angles = parseAngles(master);
  for (const angle of angles) {
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.angle = angle;
    b.textContent = angle;
    b.onclick = () => play(angle);
    $('#angles').append(b);
  }
  watchPlayback($('#video'));
  const wanted = new URLSearchParams(location.search).get('angle');
  play(angles.includes(wanted) ? wanted : angles[0]);
}

start();
