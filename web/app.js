// swarmpack operator preview: every angle playing (hls.js), a large player whose angle switch
// keeps the master timecode (PDT), the rung in use, and the newest window with its Ed25519
// signatures checked in the browser (WebCrypto). Talks only to the server that served it.
/* global Hls */
import { MATCH_ID, fetchOk, getToken, hex, keyErrorText, loadPubkey, parseAngles, verifyEd25519 } from '/.player/shared.js';
import { SignedSegments, UNSIGNED_SEGMENT, verifyingLoader } from '/.player/segments.js';
import { followAudience } from '/.preview/audience.js';

const $ = (sel) => document.querySelector(sel);
// Every signed segment of the playlists loaded: segments are played only when they match
// their tag, and the token goes only to key URLs a verified tag names.
const segments = new SignedSegments(new URL('/', location.href).href, () => state.pubkey && state.pubkey.key);
const REFRESH_MS = 2000;

const state = {
  match: null,
  token: null,
  angles: [],
  tiles: new Map(), // angle -> { hls, video, fig }
  big: null, // { hls, angle }
  fps: 30,
  segmentDuration: null,
  pubkey: null, // { key } or { reason }
  edge: null, // { end: ms of the newest segment's end, seq, ended }
};

// ---------- small helpers ----------


function notice(text) {
  const n = $('#notice');
  n.hidden = !text;
  n.textContent = text || '';
}

function pad(n, w = 2) {
  return String(n).padStart(w, '0');
}

/** SMPTE-style HH:MM:SS:FF (UTC) for a Date, at the ladder's frame rate. */
function timecode(date, fps) {
  const ms = date.getUTCMilliseconds();
  const frame = Math.floor((ms * fps) / 1000);
  return `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}:${pad(frame)}`;
}

function isoTime(date) {
  return date.toISOString().slice(11, 23);
}


/** The rung directory name of an hls.js level (`…/{angle}/{rung}/index.m3u8`). */
function rungName(level) {
  const url = level.url || level.uri || '';
  const parts = (Array.isArray(url) ? url[0] : url).split('?')[0].split('/');
  return parts.length >= 2 ? parts[parts.length - 2] : `${level.height}p`;
}

// ---------- token ----------


function showToken(t) {
  const pill = $('#token-status');
  pill.dataset.state = t.state;
  pill.textContent = t.label;
  pill.title =
    t.state === 'none'
      ? 'serve runs without --dev-tokens: paste a token from `swarmpack token`, or add ?token=… to the address'
      : '';
  $('#token-form').hidden = t.state !== 'none';
}

// ---------- players ----------


function keyStatus(ok, text) {
  const el = $('#keys');
  el.className = ok ? 'ok' : 'bad';
  el.textContent = text;
}

function showError(el, text, kind) {
  el.hidden = !text;
  el.textContent = text || '';
  el.dataset.kind = kind || '';
}

/**
 * An hls.js instance that plays only segments matching their signed tags (when this browser
 * can verify) and sends the viewer token to key URLs a verified tag names, and only there.
 * `onError(text, kind)` shows or (text null) clears the player's error; `short` for tiles.
 */
function makeHls(onError, short, extra = {}) {
  const verifying = Boolean(state.pubkey && state.pubkey.key);
  const hls = new Hls({
    liveSyncDurationCount: 3,
    ...extra,
    loader: verifying ? verifyingLoader(Hls.DefaultConfig.loader, (url, data) => segments.check(url, data)) : Hls.DefaultConfig.loader,
    xhrSetup: segments.xhrSetup(() => state.token),
  });
  hls.on(Hls.Events.LEVEL_LOADED, (_, data) => {
    const text = data.networkDetails && data.networkDetails.responseText;
    if (typeof text === 'string') segments.addPlaylist(text, data.details.url);
  });
  let alive = true; // a switched-away player is destroyed: its pending retries must not run
  hls.on(Hls.Events.DESTROYING, () => {
    alive = false;
  });
  hls.on(Hls.Events.FRAG_DECRYPTED, () => onError(null));
  hls.on(Hls.Events.KEY_LOADED, (_, data) => {
    const uri = data.keyInfo && data.keyInfo.decryptdata && data.keyInfo.decryptdata.uri;
    keyStatus(true, `✓ key for period ${uri ? uri.split('/').pop() : '?'} delivered`);
  });
  hls.on(Hls.Events.ERROR, (_, data) => {
    const keyFail = data.details === Hls.ErrorDetails.KEY_LOAD_ERROR || data.details === Hls.ErrorDetails.KEY_LOAD_TIMEOUT;
    if (keyFail) {
      const code = (data.response && data.response.code) || (data.networkDetails && data.networkDetails.status);
      onError(keyErrorText(code, short), 'key');
      keyStatus(false, `✗ ${keyErrorText(code, true)}: viewers without a valid token cannot play`);
    } else if (data.response && data.response.text === UNSIGNED_SEGMENT) {
      const path = data.frag ? new URL(data.frag.url).pathname.slice(1) : 'a segment';
      onError(`${path}: the origin's bytes do not match its signed tag; not played`, 'tamper');
    } else if (data.fatal) {
      onError(`Playback error: ${data.details}${data.response ? ` (HTTP ${data.response.code})` : ''}; retrying`, 'fatal');
    }
    if (!data.fatal) return;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
      hls.recoverMediaError();
    } else {
      setTimeout(() => alive && hls.startLoad(), keyFail ? 5000 : 2000);
    }
  });
  return hls;
}

function tileCaption(angle) {
  const t = state.tiles.get(angle);
  const level = t.hls.levels[t.hls.currentLevel];
  t.fig.querySelector('.rung').textContent = level ? rungName(level) : '';
}

function startTile(angle) {
  const fig = document.createElement('figure');
  fig.className = 'tile';
  fig.dataset.angle = angle;
  fig.innerHTML = '<video muted playsinline autoplay></video><div class="error" hidden></div>' +
    '<figcaption><b></b><span class="rung dim"></span></figcaption>';
  fig.querySelector('b').textContent = angle;
  fig.title = `Show ${angle} on the large player`;
  fig.addEventListener('click', () => switchBig(angle));
  $('#grid').append(fig);
  const video = fig.querySelector('video');
  const err = fig.querySelector('.error');
  const hls = makeHls((text, kind) => showError(err, text, kind), true, { capLevelToPlayerSize: true });
  state.tiles.set(angle, { hls, video, fig });
  hls.on(Hls.Events.LEVEL_SWITCHED, () => tileCaption(angle));
  hls.loadSource(`/${state.match}/${angle}/master.m3u8`);
  hls.attachMedia(video);
  video.play().catch(() => {});
}

function fillRungs(hls) {
  const sel = $('#rung');
  const keep = sel.value;
  sel.length = 1;
  hls.levels.forEach((level, i) => {
    const o = document.createElement('option');
    o.value = String(i);
    o.textContent = `${rungName(level)} · ${Math.round(level.bitrate / 1000)} kb/s`;
    sel.append(o);
  });
  sel.value = Number(keep) < hls.levels.length ? keep : '-1';
}

function bigInfo() {
  const b = state.big;
  if (!b) return;
  const level = b.hls.levels[b.hls.currentLevel];
  $('#big-info').textContent = level
    ? `${b.angle} · rung ${rungName(level)} · ${level.width}×${level.height} · ${Math.round(level.bitrate / 1000)} kb/s`
    : b.angle;
  $('#big-info').dataset.rung = level ? rungName(level) : '';
}

/** Play `angle` on the large player, resuming at the PDT the previous angle was showing. */
function switchBig(angle) {
  if (state.big && state.big.angle === angle) return;
  const video = $('#big');
  const prev = state.big;
  const pdt = prev && prev.hls.playingDate ? prev.hls.playingDate.getTime() : null;
  if (prev) prev.hls.destroy();
  const err = $('#big-error');
  showError(err, null);
  const hls = makeHls((text, kind) => showError(err, text, kind), false);
  state.big = { hls, angle };
  video.dataset.angle = angle;
  for (const b of document.querySelectorAll('#switcher button')) b.setAttribute('aria-pressed', String(b.dataset.angle === angle));
  for (const t of state.tiles.values()) t.fig.dataset.selected = String(t.fig.dataset.angle === angle);

  const info = $('#switch-info');
  if (pdt !== null) {
    // Epoch-locked segments: the same PDT exists in every angle. Start loading there.
    hls.once(Hls.Events.LEVEL_LOADED, (_, data) => {
      const frag = data.details.fragments.find(
        (f) => f.programDateTime !== null && f.programDateTime <= pdt && pdt < f.programDateTime + f.duration * 1000,
      );
      if (frag) hls.startLoad(frag.start + (pdt - frag.programDateTime) / 1000);
    });
    // hls.js sometimes starts a fresh live player a segment-fraction away from the position
    // asked for (about 1 s, 1 switch in 10): one seek by the measured offset lands it.
    let seeked = null;
    const onTime = () => {
      if (!hls.playingDate || video.currentTime === 0) return;
      const delta = (hls.playingDate.getTime() - pdt) / 1000;
      if (seeked === null && Math.abs(delta) > 0.05) {
        seeked = delta;
        video.currentTime -= delta;
        return;
      }
      video.removeEventListener('timeupdate', onTime);
      info.dataset.delta = delta.toFixed(3);
      info.textContent = `Switched to ${angle} at ${isoTime(new Date(pdt))} UTC; resumed at ` +
        `${isoTime(hls.playingDate)} (Δ ${delta >= 0 ? '+' : ''}${delta.toFixed(3)} s` +
        `${seeked === null ? '' : `, after a seek of ${(-seeked).toFixed(3)} s`})`;
    };
    video.addEventListener('timeupdate', onTime);
    info.textContent = `Switching to ${angle} at ${isoTime(new Date(pdt))} UTC…`;
    delete info.dataset.delta;
  }
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    fillRungs(hls);
    const pick = Number($('#rung').value);
    if (pick >= 0) hls.currentLevel = pick;
  });
  hls.on(Hls.Events.LEVEL_SWITCHED, bigInfo);
  hls.on(Hls.Events.LEVEL_LOADED, (_, data) => {
    const frags = data.details.fragments;
    const last = frags[frags.length - 1];
    if (last && last.programDateTime !== null) {
      state.edge = { end: last.programDateTime + last.duration * 1000, seq: last.sn, ended: !data.details.live };
    }
    const rate = hls.levels[data.level] && hls.levels[data.level].frameRate;
    if (rate) state.fps = rate;
  });
  hls.loadSource(`/${state.match}/${angle}/master.m3u8`);
  hls.attachMedia(video);
  video.play().catch(() => {});
  bigInfo();
}

/** Videos whose currentTime moved in the last second count as playing. */
const lastMoved = new Map();

function playersLine() {
  const videos = [...document.querySelectorAll('video')];
  const now = Date.now();
  let playing = 0;
  for (const v of videos) {
    const seen = lastMoved.get(v);
    if (!seen || seen.t !== v.currentTime) lastMoved.set(v, { t: v.currentTime, at: now });
    const moved = lastMoved.get(v);
    if (moved.t > 0 && seen && now - moved.at < 1000) playing += 1;
  }
  const el = $('#players');
  el.className = playing === videos.length ? 'ok' : 'bad';
  el.textContent = `${playing} of ${videos.length} playing`;
}

/**
 * The master timecode of the frame on the large player. With requestVideoFrameCallback it is
 * the presented frame's (mediaTime); otherwise currentTime's, a few frames early or late.
 */
function showTimecode(mediaTime) {
  const b = state.big;
  const video = $('#big');
  const date = b && video.currentTime > 0 && video.readyState >= 2 && b.hls.playingDate;
  if (!date) return;
  const at = new Date(date.getTime() - (mediaTime === undefined ? 0 : (video.currentTime - mediaTime) * 1000));
  $('#timecode').textContent = timecode(at, state.fps);
  if (state.segmentDuration) {
    $('#seq').textContent = `seq ${Math.floor(at.getTime() / 1000 / state.segmentDuration)}`;
  }
}

function onFrame(_, meta) {
  showTimecode(meta.mediaTime);
  $('#big').requestVideoFrameCallback(onFrame);
}

function tick() {
  playersLine();
  if (!('requestVideoFrameCallback' in HTMLVideoElement.prototype)) showTimecode();
  const e = state.edge;
  if (e) {
    const age = (Date.now() - e.end) / 1000;
    $('#edge').textContent = e.ended
      ? `match ended (last seq ${e.seq})`
      : `seq ${e.seq}, ends ${age.toFixed(1)} s ago${age > 3 * (state.segmentDuration || 2) ? ' (stalled?)' : ''}`;
  }
}

// ---------- signatures ----------



function showSig(el, result, extra = '') {
  el.dataset.state = result;
  el.textContent =
    result === 'verified'
      ? `✓ signature verified (${state.pubkey.via === 'WebCrypto' ? 'Ed25519' : state.pubkey.via})${extra}`
      : result === 'bad'
        ? `✗ BAD SIGNATURE${extra}`
        : state.pubkey.reason;
}

async function check(bytes, sig) {
  if (!state.pubkey.key) return 'unsupported';
  const ok = await verifyEd25519(state.pubkey.key, sig, bytes);
  return ok ? 'verified' : 'bad';
}

async function refreshWindow() {
  const m = state.match;
  if (!state.pubkey) state.pubkey = await loadPubkey(new URLSearchParams(location.search).get('pin'));
  const [liveBytes, liveSig] = await Promise.all([
    fetchOk(`/${m}/live.json`, 'bytes'),
    fetchOk(`/${m}/live.json.sig`, 'bytes'),
  ]);
  const liveResult = await check(liveBytes, liveSig);
  showSig($('#live-status'), liveResult);
  const live = JSON.parse(new TextDecoder().decode(liveBytes));
  const w = Math.max(...live.windows);
  const [manBytes, manSig] = await Promise.all([
    fetchOk(`/${m}/windows/${w}.json`, 'bytes'),
    fetchOk(`/${m}/windows/${w}.json.sig`, 'bytes'),
  ]);
  const manifest = JSON.parse(new TextDecoder().decode(manBytes));
  let chain = '';
  if (crypto.subtle) {
    const digest = hex(await crypto.subtle.digest('SHA-256', manBytes));
    chain = digest === live.newest_manifest_sha256 ? ' · named by live.json' : '';
  }
  const manResult = manifest.match === m ? await check(manBytes, manSig) : 'bad';
  showSig($('#sig-status'), manResult, chain);
  state.segmentDuration = manifest.segment_duration;
  const angles = new Set(manifest.segments.map((s) => s.angle)).size;
  const rungs = new Set(manifest.segments.map((s) => s.rung)).size;
  $('#win-number').textContent =
    `${w} · from ${manifest.start_pdt.slice(11, 19)} UTC · ${manifest.segments.length} segments ` +
    `(${angles} angle${angles === 1 ? '' : 's'} × ${rungs} rung${rungs === 1 ? '' : 's'})${live.ended ? ' · ended' : ''}`;
  // Infohashes and links only from a window whose signatures verified and that live.json names.
  const trusted = liveResult === 'verified' && manResult === 'verified' && chain !== '';
  const t = manifest.torrent;
  const hidden = '(not shown: not verified)';
  $('#ih-v1').textContent = trusted ? t.infohash_v1 : hidden;
  $('#ih-v2').textContent = trusted ? t.infohash_v2 : hidden;
  $('#ih-v2').title = trusted ? t.infohash_v2 : '';
  for (const [id, href] of [['#magnet', t.magnet], ['#torrent', `/${m}/${t.path}`]]) {
    if (trusted) $(id).setAttribute('href', href);
    else $(id).removeAttribute('href');
  }
}

function size(bytes) {
  return bytes < 1e6 ? `${(bytes / 1e3).toFixed(0)} kB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

/** Objects the run on this machine has not yet got onto the origin (`serve --spool`). */
async function refreshSpool() {
  const el = $('#spool');
  const r = await fetch(`/.preview/spool.json?match=${encodeURIComponent(state.match)}`, { cache: 'no-store' });
  if (r.status === 404) {
    el.className = 'dim';
    el.textContent = 'not shown (start serve with --spool DIR)';
    return;
  }
  const s = await r.json();
  const late = s.oldest_secs !== null && s.oldest_secs > 3 * (state.segmentDuration || 2);
  el.className = late ? 'bad' : 'ok';
  el.dataset.objects = String(s.objects);
  el.textContent = s.objects === 0
    ? '✓ empty: the origin has everything'
    : `${s.objects} object${s.objects === 1 ? '' : 's'} waiting (${size(s.bytes)}), oldest ${s.oldest_secs.toFixed(1)} s` +
      (late ? ': the origin is not keeping up' : '');
}

async function windowLoop() {
  try {
    await refreshWindow();
  } catch (e) {
    $('#win-number').textContent = `waiting: ${e.message}`;
  }
  try {
    await refreshSpool();
  } catch (e) {
    $('#spool').textContent = `unknown: ${e.message}`;
  }
  setTimeout(windowLoop, REFRESH_MS);
}

// ---------- start ----------


async function pickMatch() {
  const matches = await (await fetch('/.preview/matches.json', { cache: 'no-store' })).json();
  const wanted = new URLSearchParams(location.search).get('match');
  if (wanted && !MATCH_ID.test(wanted)) {
    throw new Error(`?match=${wanted} is not a match ID (a-z, 0-9, '-' and '_', up to 32 characters)`);
  }
  const sel = $('#match');
  sel.length = 0;
  const names = matches.map((x) => x.name);
  if (wanted && !names.includes(wanted)) names.unshift(wanted);
  for (const name of names) sel.append(new Option(name, name));
  sel.onchange = () => {
    const q = new URLSearchParams(location.search);
    q.set('match', sel.value);
    location.search = q.toString();
  };
  const match = wanted || names[0];
  if (match) sel.value = match;
  return match;
}

async function start() {
  if (!window.Hls || !Hls.isSupported()) {
    notice(window.Hls
      ? 'This browser has no Media Source Extensions: the players cannot run here.'
      : 'hls.js is missing from this swarmpack build: run scripts/setup (npm ci in web/) and rebuild.');
    return;
  }
  let match;
  try {
    match = await pickMatch();
  } catch (e) {
    notice(e.message);
    return;
  }
  if (!match) {
    notice('No match under the origin yet: start `swarmpack run` with this origin. Retrying…');
    setTimeout(start, REFRESH_MS);
    return;
  }
  let master;
  try {
    master = await fetchOk(`/${match}/master.m3u8`);
  } catch (e) {
    notice(`Waiting for match ${match} to publish (${e.message}). Retrying…`);
    setTimeout(start, REFRESH_MS);
    return;
  }
  notice(null);
  state.match = match;
  document.title = `${match} · swarmpack preview`;
  const tok = await getToken(match);
  state.token = tok.token;
  showToken(tok);
  // The pinned key first: the players check every segment against it.
  if (!state.pubkey) state.pubkey = await loadPubkey(new URLSearchParams(location.search).get('pin'));
  state.angles = parseAngles(master);
  for (const angle of state.angles) {
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.angle = angle;
    b.textContent = angle;
    b.setAttribute('aria-pressed', 'false');
    b.addEventListener('click', () => switchBig(angle));
    $('#switcher').append(b);
    startTile(angle);
  }
  const first = new URLSearchParams(location.search).get('angle');
  switchBig(state.angles.includes(first) ? first : state.angles[0]);
  $('#rung').addEventListener('change', () => {
    if (state.big) state.big.hls.currentLevel = Number($('#rung').value);
  });
  document.addEventListener('keydown', (e) => {
    const n = Number(e.key);
    if (n >= 1 && n <= state.angles.length && e.target.tagName !== 'INPUT') switchBig(state.angles[n - 1]);
  });
  $('#token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = $('#token-input').value.trim();
    if (!t) return;
    sessionStorage.setItem(`token:${match}`, t);
    location.reload();
  });
  setInterval(tick, 100);
  followAudience($('#audience'), match);
  if ('requestVideoFrameCallback' in HTMLVideoElement.prototype) $('#big').requestVideoFrameCallback(onFrame);
  windowLoop();
}

start().catch((e) => notice(`The preview page failed to start: ${e.message}`));
