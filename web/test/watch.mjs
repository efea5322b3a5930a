// Drives the fans' player (/watch) in headless Chromium, several viewers in their own browser
// contexts joining one after another, and reports what each saw (window.swarmpack.stats). Run
// by tests/watch_p2p.rs:
//
//   node web/test/watch.mjs --url http://127.0.0.1:PORT/watch?match=ID --viewers 4
//        [--stagger-ms 4000] [--watch-ms 30000] [--evil | --evil-first] [--no-validation-on 0]
//        [--embed-last] [--no-webcrypto-ed25519-on N]
//
// --evil adds one more viewer whose browser corrupts every WebRTC message it sends that is
// large enough to carry segment data (a byte flipped in the middle): an evil peer (after the
// first viewer; --evil-first: before everyone, so it holds what the next viewers start with). Each page
// also checks, on its own, every segment hls.js received (FRAG_LOADED) against its signed tag,
// and counts the ones that do not match as `unverifiedPlayed`: the check that must fail when
// validation is switched off (--no-validation-on N turns it off on viewer N, to prove that).
//
// --no-webcrypto-ed25519-on N gives viewer N a browser whose WebCrypto has no Ed25519 (as
// some still ship): its player must check with the pure-JS fallback and say so.
//
// --embed-last makes the last viewer a page of another site (http://localhost:9, served by
// playwright, not the swarmpack server) that mounts the player from /.player/player.js as the
// README shows, with a viewer token the "site" fetched from /dev-token: the embedded player
// must load across origins and share with the others.
//
// --namespaces NS0,NS1,... (the network lab, scripts/swarm-lab): viewer i gets a browser of its
// own, started inside network namespace NSi (`ip netns exec`), with WebRTC candidates as real
// fans have them (host addresses hidden behind mDNS names); --secure-origins lists the lab's
// http:// and ws:// origins that Chromium must treat as secure (WebCrypto needs a secure
// context, and a secure page may open only listed ws:// trackers).
//
// Every page's behind-live figure is sampled once a second while it plays (behindSamples), so a
// benchmark reports its median and worst, not one moment's.
//
// Every page also records, with a hook of the test's own (recordHandedToHls), the URL, size and
// SHA-256 of every fragment hls.js was handed (handedToHls).
//
// Prints one JSON line: {viewers: [stats + unverifiedPlayed + played bytes + connections +
// behindSamples + fetch-early (peerId, early: URLs it fetched early, rescued: segments fetched
// because playback waited, fromPeers: {url, peer})],
// evil: stats}.
import { chromium } from 'playwright-core';
import { parseArgs } from 'node:util';

const { values: arg } = parseArgs({
  options: {
    url: { type: 'string' },
    viewers: { type: 'string', default: '4' },
    'stagger-ms': { type: 'string', default: '4000' },
    'watch-ms': { type: 'string', default: '30000' },
    evil: { type: 'boolean', default: false },
    'evil-first': { type: 'boolean', default: false },
    'no-validation-on': { type: 'string' },
    'embed-last': { type: 'boolean', default: false },
    'no-webcrypto-ed25519-on': { type: 'string' },
    namespaces: { type: 'string' },
    'secure-origins': { type: 'string' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
  },
});
if (!arg.url) {
  console.error('usage: --url URL [--viewers N] [--evil]');
  process.exit(2);
}
const n = Number(arg.viewers);
const namespaces = arg.namespaces ? arg.namespaces.split(',') : null;
if (namespaces && namespaces.length < n) {
  console.error(`--namespaces names ${namespaces.length} namespaces for ${n} viewers`);
  process.exit(2);
}
// Offline machine: no background connections, no sandbox as root, autoplay without a click.
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'];
const browsers = [];
async function launch(ns) {
  const b = await chromium.launch(ns
    ? {
      // In the lab, host candidates stay mDNS names, as for real fans.
      executablePath: await nsWrapper(ns),
      headless: true,
      args: [...ARGS, ...(arg['secure-origins'] ? [`--unsafely-treat-insecure-origin-as-secure=${arg['secure-origins']}`] : [])],
    }
    : {
      executablePath: arg.chromium,
      headless: true,
      // On loopback, WebRTC host candidates as plain IPs (no mDNS names, which nothing here resolves).
      args: [...ARGS, '--disable-features=WebRtcHideLocalIpsWithMdns'],
    });
  browsers.push(b);
  return b;
}
// A script that starts Chromium inside network namespace NS (playwright talks to it over pipes).
async function nsWrapper(ns) {
  const { writeFile, mkdtemp } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(`${tmpdir()}/watch-${ns}-`);
  const path = `${dir}/chromium`;
  await writeFile(path, `#!/bin/sh\nexec ip netns exec ${ns} ${arg.chromium} "$@"\n`, { mode: 0o755 });
  return path;
}
const browser = namespaces ? null : await launch(null);

// The evil peer: every large binary WebRTC message it sends has a byte flipped.
function corruptUploads() {
  const send = RTCDataChannel.prototype.send;
  RTCDataChannel.prototype.send = function (data) {
    const size = data && (data.byteLength ?? data.size ?? data.length);
    if (size > 1000 && (data instanceof ArrayBuffer || ArrayBuffer.isView(data))) {
      const bytes = new Uint8Array(data instanceof ArrayBuffer ? data.slice(0) : data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
      bytes[bytes.length >> 1] ^= 0xff;
      return send.call(this, bytes);
    }
    return send.call(this, data);
  };
}

// The test's own record of what hls.js was handed, apart from the player's code: it wraps
// hls.js's event dispatch (window.Hls, a classic script) before any page script runs, and for
// every FRAG_LOADED takes the fragment's URL, size and SHA-256 (WebCrypto copies the bytes when
// called). tests/watch_p2p.rs compares each hash with the origin's file.
function recordHandedToHls() {
  const handed = [];
  window.__handedToHls = handed;
  let hls;
  Object.defineProperty(window, 'Hls', {
    configurable: true,
    get: () => hls,
    set(v) {
      hls = v;
      const trigger = v.prototype.trigger;
      v.prototype.trigger = function (event, data) {
        if (event === 'hlsFragLoaded' && data && data.payload && data.frag) {
          const entry = { url: data.frag.url, bytes: data.payload.byteLength, sha256: null };
          handed.push(entry);
          crypto.subtle.digest('SHA-256', data.payload).then((d) => {
            entry.sha256 = Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, '0')).join('');
          }, (e) => { entry.sha256 = `error: ${e}`; });
        }
        return trigger.call(this, event, data);
      };
    },
  });
}

const pages = [];
const errors = [];
// Validation switched off, from before the page's own script runs: window.swarmpack.validate
// accepts everything.
function acceptEverything() {
  Object.defineProperty(window, 'swarmpack', {
    configurable: true,
    set(v) {
      v.validate = async () => true;
      Object.defineProperty(window, 'swarmpack', { value: v, writable: true, configurable: true });
    },
  });
}

// A WebCrypto without Ed25519: importing or verifying with it fails, as in such browsers.
function noWebCryptoEd25519() {
  const subtle = crypto.subtle;
  const isEd = (alg) => (typeof alg === 'string' ? alg : alg && alg.name) === 'Ed25519';
  for (const method of ['importKey', 'verify']) {
    const real = subtle[method].bind(subtle);
    subtle[method] = (...a) => (a.some(isEd)
      ? Promise.reject(new DOMException('Unrecognized name', 'NotSupportedError'))
      : real(...a));
  }
}

// Another site's page with the player embedded, as in the README.
const FAN_SITE = 'http://localhost:9/final.html';
async function embedPage() {
  const server = new URL(arg.url);
  const match = server.searchParams.get('match');
  const r = await fetch(`${server.origin}/dev-token?match=${match}&session=fansite`);
  if (!r.ok) throw new Error(`/dev-token: HTTP ${r.status}`);
  const token = (await r.text()).trim();
  return `<!doctype html>
<meta charset="utf-8"><title>Grand final · a fan site</title>
<h1>Grand final</h1>
<div id="match"></div>
<script type="module">
  import { mount } from '${server.origin}/.player/player.js';
  window.swarmpack = mount(document.querySelector('#match'), { match: '${match}', token: '${token}' });
</script>`;
}

async function open(name, evil, noValidation = false, embed = false, noEd25519 = false, ns = null) {
  // The fan site is served by playwright, so Chromium takes it for a public page, which may
  // reach the loopback server only with Local Network Access granted (a public site would
  // embed from a public swarmpack server and need nothing).
  const context = await (ns ? await launch(ns) : browser).newContext({
    viewport: { width: 960, height: 540 },
    permissions: embed ? ['local-network-access'] : [],
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(`${name}: ${e}`));
  if (process.env.WATCH_CONSOLE) page.on('console', (m) => console.error(`${name}: ${m.text()}`));
  await page.addInitScript(recordHandedToHls);
  if (evil) await page.addInitScript(corruptUploads);
  if (noValidation) await page.addInitScript(acceptEverything);
  if (noEd25519) await page.addInitScript(noWebCryptoEd25519);
  if (embed) {
    const body = await embedPage();
    await context.route(FAN_SITE, (route) => route.fulfill({ contentType: 'text/html', body }));
  }
  await page.goto(embed ? FAN_SITE : arg.url);
  pages.push({ name, page, evil, behind: [] });
}

// Behind live, once a second, from each page that is playing.
const sampler = setInterval(() => {
  for (const p of pages) {
    p.page.evaluate(() => {
      const s = window.swarmpack && window.swarmpack.stats;
      return s && s.playing ? s.behindLiveSeconds : null;
    }).then((v) => { if (typeof v === 'number') p.behind.push(Math.round(v * 100) / 100); }, () => {});
  }
}, 1000);

try {
  if (arg['evil-first']) {
    await open('evil', true);
    await new Promise((r) => setTimeout(r, Number(arg['stagger-ms'])));
  }
  for (let i = 0; i < n; i++) {
    const embed = arg['embed-last'] && i === n - 1;
    await open(embed ? `embedded${i}` : `viewer${i}`, false, arg['no-validation-on'] === String(i), embed,
      arg['no-webcrypto-ed25519-on'] === String(i), namespaces && namespaces[i]);
    if (i === 0 && arg.evil) await open('evil', true);
    await new Promise((r) => setTimeout(r, Number(arg['stagger-ms'])));
  }
  await new Promise((r) => setTimeout(r, Number(arg['watch-ms'])));
  clearInterval(sampler);
  const out = { viewers: [], evil: null, errors };
  for (const { name, page, evil, behind } of pages) {
    const seen = await page.evaluate(() => ({
      ...window.swarmpack.stats,
      unverifiedPlayed: window.swarmpack.unverifiedPlayed || 0,
      verifiedPlayed: window.swarmpack.verifiedPlayed || 0,
      playedBytes: window.swarmpack.playedBytes || 0,
      startupSeconds: window.swarmpack.startupSeconds,
      longestStallSeconds: window.swarmpack.longestStallSeconds || 0,
      currentTime: document.querySelector('video').currentTime,
      p2pState: document.querySelector('.sp-p2p').textContent,
      error: document.querySelector('.sp-error').hidden ? null : document.querySelector('.sp-error').textContent,
      origin: location.origin,
      connections: window.swarmpack.connections ? window.swarmpack.connections() : [],
      relayClosed: window.swarmpack.relayClosed ? window.swarmpack.relayClosed() : 0,
      aloneSwitches: window.swarmpack.aloneSwitches || 0,
      peerId: window.swarmpack.peerId || null,
      early: window.swarmpack.early ? window.swarmpack.early() : [],
      rescued: window.swarmpack.rescued ? window.swarmpack.rescued() : 0,
      policyChanges: window.swarmpack.policyChanges || 0,
      policy: document.querySelector('.sp-policy')?.textContent ?? null,
      fromPeers: window.swarmpack.fromPeers || [],
      fromHttp: window.swarmpack.fromHttp || [],
      handedToHls: window.__handedToHls || [],
    }));
    seen.behindSamples = behind;
    if (evil) out.evil = { name, ...seen };
    else out.viewers.push({ name, ...seen });
  }
  console.log(JSON.stringify(out));
} finally {
  await Promise.all(browsers.map((b) => b.close()));
}
