// Drives the preview page in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core) and asserts what an operator would check by eye. Run by tests/preview.rs:
//
//   node web/test/preview.mjs --url http://127.0.0.1:PORT/?match=ID --angles main,pov \
//        --rungs 360p,180p --expect play|key-error|no-ed25519|tampered|audience --screenshot FILE.png
//
// audience reads the audience panel (the charts of what the fans' players reported);
// key-error also tampers with the window manifest on its way to the page (one hex digit of
// its infohash) and forges the rest as an attacker who holds the origin would: it signs the
// tampered manifest with a key of its own and serves that key as the origin's pubkey.pem.
// The page checks against the key `serve --keys` pins, so it must call that signature bad,
// still verify live.json, and show no infohash or magnet;
// tampered flips a byte in every segment of the last angle on its way to the page: that
// angle's tile must say its bytes do not match their signed tags and play nothing;
// no-ed25519 takes Ed25519 out of the page's WebCrypto, so the page must verify with the
// pure-JS fallback (@noble/ed25519) and say so.
//
// Exits non-zero with the failed check; on success prints one JSON line of what it saw.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { parseArgs } from 'node:util';
import { generateKeyPairSync, sign } from 'node:crypto';

const { values: arg } = parseArgs({
  options: {
    url: { type: 'string' },
    angles: { type: 'string' },
    rungs: { type: 'string', default: '' },
    expect: { type: 'string', default: 'play' },
    screenshot: { type: 'string' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
  },
});
assert.ok(arg.url && arg.angles, 'usage: --url URL --angles a,b [--expect play|key-error]');
const angles = arg.angles.split(',');
const rungs = arg.rungs ? arg.rungs.split(',') : [];
const origin = new URL(arg.url).origin;

const browser = await chromium.launch({
  executablePath: arg.chromium,
  headless: true,
  // Offline machine: no background connections, no sandbox as root, autoplay without a click.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
});
const seen = {};
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  const foreign = [];
  const pageErrors = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol !== 'data:' && u.protocol !== 'blob:' && u.origin !== origin) foreign.push(r.url());
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  if (arg.expect === 'key-error') {
    const tamper = (text) => text.replace(/("infohash_v1":\s*"[0-9a-f]{39})([0-9a-f])/,
      (_, head, last) => head + (last === '0' ? '1' : '0'));
    const forger = generateKeyPairSync('ed25519');
    await page.route(/\/windows\/\d+\.json$/, async (route) => {
      const response = await route.fetch();
      await route.fulfill({ response, body: tamper(await response.text()) });
    });
    await page.route(/\/windows\/\d+\.json\.sig$/, async (route) => {
      const original = await page.request.get(route.request().url().replace(/\.sig$/, ''));
      const forged = sign(null, Buffer.from(tamper(await original.text())), forger.privateKey);
      await route.fulfill({ status: 200, contentType: 'application/octet-stream', body: forged });
    });
    await page.route(/\/[a-z0-9_-]+\/pubkey\.pem$/, (route) =>
      route.fulfill({ status: 200, contentType: 'application/x-pem-file',
        body: forger.publicKey.export({ type: 'spki', format: 'pem' }) }));
  }
  if (arg.expect === 'tampered') {
    // An origin writer changed every segment of the last angle: a byte flipped in each.
    const victim = angles[angles.length - 1];
    await page.route(new RegExp(`/${victim}/[^/]+/\\d+\\.ts$`), async (route) => {
      const response = await route.fetch();
      const body = Buffer.from(await response.body());
      body[body.length >> 1] ^= 0xff;
      await route.fulfill({ response, body });
    });
  }
  if (arg.expect === 'no-ed25519') {
    await page.addInitScript(() => {
      const importKey = SubtleCrypto.prototype.importKey;
      SubtleCrypto.prototype.importKey = function (format, data, alg, ...rest) {
        const name = typeof alg === 'string' ? alg : alg.name;
        if (name === 'Ed25519') return Promise.reject(new DOMException('no Ed25519', 'NotSupportedError'));
        return importKey.call(this, format, data, alg, ...rest);
      };
    });
  }
  await page.goto(arg.url);

  const times = () => page.evaluate(() =>
    Object.fromEntries([...document.querySelectorAll('video')].map((v) =>
      [v.id || `tile:${v.closest('figure').dataset.angle}`, v.currentTime])));

  // Every angle has a tile, and the large player has one button per angle.
  await page.waitForFunction((n) => document.querySelectorAll('#grid figure').length === n, angles.length,
    { timeout: 30000 });
  const tileAngles = await page.$$eval('#grid figure', (fs) => fs.map((f) => f.dataset.angle));
  assert.deepEqual(tileAngles, angles, 'one tile per angle, in master playlist order');

  if (arg.expect === 'no-ed25519') {
    for (const sel of ['#live-status', '#sig-status']) {
      await page.waitForSelector(`${sel}[data-state="verified"]`, { timeout: 30000 });
      assert.match(await page.textContent(sel), /verified \(pure-JS Ed25519\)/);
    }
    seen.sig_status = await page.textContent('#sig-status');
  } else if (arg.expect === 'audience') {
    // The audience panel charts what the fans' players reported: at least one viewer now, and
    // a line drawn for each figure that has a value.
    await page.waitForFunction(() => Number(document.querySelector('#audience dd[data-figure="viewers"] .now')?.textContent) >= 1,
      null, { timeout: 30000 });
    seen.audience = await page.$$eval('#audience dd', (dds) => Object.fromEntries(dds.map((dd) =>
      [dd.dataset.figure, { now: dd.querySelector('.now').textContent, lines: dd.querySelectorAll('polyline').length }])));
    assert.ok(seen.audience.viewers.lines >= 1, 'no viewers chart drawn');
  } else if (arg.expect === 'tampered') {
    // The changed angle's tile says why and plays nothing; the others play.
    const victim = angles[angles.length - 1];
    const sel = `#grid figure[data-angle="${victim}"] .error[data-kind="tamper"]`;
    await page.waitForSelector(sel, { state: 'visible', timeout: 30000 });
    seen.tile_error = await page.textContent(sel);
    assert.match(seen.tile_error, new RegExp(`/${victim}/.*\\.ts: the origin's bytes do not match its signed tag`));
    await page.waitForFunction((v) => [...document.querySelectorAll('#grid figure')]
      .every((f) => f.dataset.angle === v || f.querySelector('video').currentTime > 0.5), victim, { timeout: 45000 });
    const before = await times();
    await page.waitForTimeout(3000);
    const after = await times();
    assert.ok(after[`tile:${victim}`] < 0.5, `${victim} played tampered bytes: ${after[`tile:${victim}`]}`);
    for (const a of angles.slice(0, -1)) assert.ok(after[`tile:${a}`] > before[`tile:${a}`], `${a} stopped playing`);
    seen.times = after;
  } else if (arg.expect === 'key-error') {
    // The tampered manifest fails its signature; live.json, untouched, still verifies.
    await page.waitForSelector('#sig-status[data-state="bad"]', { timeout: 30000 });
    await page.waitForSelector('#live-status[data-state="verified"]', { timeout: 30000 });
    seen.sig_status = await page.textContent('#sig-status');
    // Nothing from the unverified manifest is offered.
    assert.match(await page.textContent('#ih-v1'), /not shown/);
    assert.equal(await page.getAttribute('#magnet', 'href'), null, 'a magnet from an unverified manifest');
    assert.equal(await page.getAttribute('#torrent', 'href'), null, 'a torrent from an unverified manifest');
    assert.equal(await page.getAttribute('#token-status', 'data-state'), 'none', 'no token without --dev-tokens');
    await page.waitForSelector('#big-error[data-kind="key"]', { state: 'visible', timeout: 30000 });
    seen.big_error = await page.textContent('#big-error');
    assert.match(seen.big_error, /HTTP 401/, 'the key error names the key server\'s answer');
    await page.waitForSelector('#grid .error[data-kind="key"]', { state: 'visible', timeout: 30000 });
    const before = await times();
    await page.waitForTimeout(3000); // a window of time in which nothing may play
    const after = await times();
    for (const [k, t] of Object.entries(after)) {
      assert.ok(t < 0.5 && t === before[k], `${k} played without a key (${before[k]} -> ${t})`);
    }
    seen.times = after;
    const n = Object.keys(after).length;
    assert.equal(await page.textContent('#players'), `0 of ${n} playing`);
    assert.match(await page.textContent('#keys'), /HTTP 401/);
    assert.match(await page.textContent('#spool'), /--spool/, 'serve without --spool says so');
  } else {
    assert.ok(['dev', 'given'].includes(await page.getAttribute('#token-status', 'data-state')), 'a token');
    // All players start.
    await page.waitForFunction(() => [...document.querySelectorAll('video')].every((v) => v.currentTime > 0.2),
      null, { timeout: 45000 });
    // Every angle (tiles and the large player) advances for 5 s.
    const t0 = await times();
    const samples = [t0];
    for (let i = 0; i < 10; i++) {
      await page.waitForTimeout(500);
      samples.push(await times());
    }
    for (const k of Object.keys(t0)) {
      const series = samples.map((s) => s[k]);
      assert.ok(series.every((t, i) => i === 0 || t >= series[i - 1]), `${k} went backwards: ${series}`);
      const gained = series[series.length - 1] - series[0];
      // Playing, not stalled: at least half of real time (a loaded machine may drop frames
      // or rebuffer briefly; a stalled player gains nothing).
      assert.ok(gained >= 2.5, `${k} advanced only ${gained.toFixed(2)} s in 5 s: ${series}`);
    }
    seen.advanced = Object.fromEntries(Object.keys(t0).map((k) => [k, samples[10][k] - t0[k]]));
    const n = Object.keys(t0).length;
    await page.waitForFunction((want) => document.querySelector('#players').textContent === want,
      `${n} of ${n} playing`, { timeout: 5000 });
    assert.match(await page.textContent('#keys'), /^✓ key for period \d+ delivered$/);

    // The newest window: both signatures verified in the browser, infohash and magnet shown.
    await page.waitForSelector('#live-status[data-state="verified"]', { timeout: 30000 });
    await page.waitForSelector('#sig-status[data-state="verified"]', { timeout: 30000 });
    // Read in one turn of the page: a newer window may replace these between two reads.
    Object.assign(seen, await page.evaluate(() => ({
      window: document.querySelector('#win-number').textContent,
      infohash_v1: document.querySelector('#ih-v1').textContent,
      infohash_v2: document.querySelector('#ih-v2').textContent,
      magnet: document.querySelector('#magnet').getAttribute('href'),
    })));
    assert.match(seen.infohash_v1, /^[0-9a-f]{40}$/);
    assert.match(seen.infohash_v2, /^[0-9a-f]{64}$/);
    assert.ok(seen.magnet.startsWith(`magnet:?xt=urn:btih:${seen.infohash_v1}`), seen.magnet);

    // The run's spool (serve --spool): a count of objects not yet on the origin.
    await page.waitForSelector('#spool[data-objects]', { timeout: 10000 });
    seen.spool = await page.textContent('#spool');

    // Rung in use and master timecode.
    seen.rung = await page.getAttribute('#big-info', 'data-rung');
    if (rungs.length) assert.ok(rungs.includes(seen.rung), `rung in use ${seen.rung} not in ${rungs}`);
    seen.timecode = await page.textContent('#timecode');
    assert.match(seen.timecode, /^\d\d:\d\d:\d\d:\d\d$/);

    // Switching angles keeps the PDT and keeps playing.
    seen.switches = [];
    for (const angle of [...angles.slice(1), angles[0]]) {
      await page.click(`#switcher button[data-angle="${angle}"]`);
      await page.waitForFunction((a) => document.querySelector('#big').dataset.angle === a, angle);
      await page.waitForSelector('#switch-info[data-delta]', { timeout: 30000 });
      const delta = Number(await page.getAttribute('#switch-info', 'data-delta'));
      assert.ok(Math.abs(delta) < 0.5, `switch to ${angle} resumed ${delta} s away from the PDT it left`);
      const a0 = await page.evaluate(() => document.querySelector('#big').currentTime);
      await page.waitForTimeout(3000);
      const a1 = await page.evaluate(() => document.querySelector('#big').currentTime);
      assert.ok(a1 - a0 >= 2.0, `${angle} on the large player advanced ${a1 - a0} s in 3 s after the switch`);
      seen.switches.push({ angle, delta, advanced: a1 - a0, text: await page.textContent('#switch-info') });
    }
  }
  if (arg.screenshot) await page.screenshot({ path: arg.screenshot });
  if (arg.expect === 'play') {
    // ?match= that is not a match ID (here one that would make /{match}/… another host's
    // address) is refused, and nothing is fetched from elsewhere.
    const elsewhere = new URL(arg.url);
    elsewhere.searchParams.set('match', '/127.0.0.2:9/x');
    await page.goto(elsewhere.toString());
    await page.waitForSelector('#notice:not([hidden])', { timeout: 10000 });
    seen.bad_match = await page.textContent('#notice');
    assert.match(seen.bad_match, /is not a match ID/);
  }
  assert.deepEqual(foreign, [], 'the page asked for something outside its server');
  assert.deepEqual(pageErrors, [], 'the page threw');
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
