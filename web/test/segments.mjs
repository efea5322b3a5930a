// Checks web/player/segments.js against a real origin: every tagged segment of one media playlist
// verifies, and one flipped byte, a wrong path or another key fails, both with WebCrypto's
// Ed25519 and with the pure-JS fallback (@noble/ed25519) for browsers that lack it. Run by
// tests/segment_signatures.rs:
//   node web/test/segments.mjs ORIGIN_DIR MATCH/ANGLE/RUNG PUBKEY.pem
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { webcrypto, generateKeyPairSync } from 'node:crypto';
import * as noble from '@noble/ed25519';
import { parseMediaPlaylist, verifySegment } from '../player/segments.js';
import { rawEd25519 } from '../player/shared.js';

const [origin, rendition, pubkeyPath] = process.argv.slice(2);
const root = 'http://origin.test/';
const base = `${root}${rendition}/index.m3u8`;
const text = readFileSync(`${origin}/${rendition}/index.m3u8`, 'utf8');
const der = Buffer.from(readFileSync(pubkeyPath, 'utf8').replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
// The two kinds of key shared.js's loadPubkey gives.
const asKey = async (spki, how) => (how === 'webcrypto'
  ? webcrypto.subtle.importKey('spki', spki, { name: 'Ed25519' }, false, ['verify'])
  : { raw: rawEd25519(new Uint8Array(spki)), noble });
const entries = parseMediaPlaylist(text, base, root);
assert.ok(entries.size >= 2, `only ${entries.size} tagged segments`);
let checked = 0;
for (const how of ['webcrypto', 'noble']) {
  const key = await asKey(der, how);
  for (const [url, entry] of entries) {
    const bytes = readFileSync(`${origin}/${url.slice(root.length)}`);
    assert.ok(await verifySegment({ ...entry }, bytes, key), `${url} does not verify`);
    const flipped = Buffer.from(bytes);
    flipped[flipped.length >> 1] ^= 1;
    assert.equal(await verifySegment({ ...entry }, flipped, key), false, `${url}: a flipped byte verified`);
    assert.equal(await verifySegment({ ...entry, path: `${entry.path}x` }, bytes, key), false, 'another path verified');
    assert.equal(await verifySegment({ ...entry, iv: '0'.repeat(32) }, bytes, key), false, 'another IV verified');
    checked += 1;
  }
  const other = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' });
  const otherKey = await asKey(other, how);
  const [url, entry] = entries.entries().next().value;
  assert.equal(await verifySegment({ ...entry }, readFileSync(`${origin}/${url.slice(root.length)}`), otherKey), false, `${how}: another key verified`);
  assert.equal(await verifySegment({ ...entry, sig: entry.sig.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) }, readFileSync(`${origin}/${url.slice(root.length)}`), key), false, `${how}: another signature verified`);
}
console.log(JSON.stringify({ checked }));
