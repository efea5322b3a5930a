// Checks web/player/segments.js against a real origin: every tagged segment of one media playlist
// verifies, and one flipped byte, a wrong path or another key fails. Run by
// tests/segment_signatures.rs:
//   node web/test/segments.mjs ORIGIN_DIR MATCH/ANGLE/RUNG PUBKEY.pem
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { webcrypto, generateKeyPairSync } from 'node:crypto';
import { parseMediaPlaylist, verifySegment } from '../player/segments.js';

const [origin, rendition, pubkeyPath] = process.argv.slice(2);
const root = 'http://origin.test/';
const base = `${root}${rendition}/index.m3u8`;
const text = readFileSync(`${origin}/${rendition}/index.m3u8`, 'utf8');
const der = Buffer.from(readFileSync(pubkeyPath, 'utf8').replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
const key = await webcrypto.subtle.importKey('spki', der, { name: 'Ed25519' }, false, ['verify']);
const entries = parseMediaPlaylist(text, base, root);
assert.ok(entries.size >= 2, `only ${entries.size} tagged segments`);
let checked = 0;
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
const otherKey = await webcrypto.subtle.importKey('spki', other, { name: 'Ed25519' }, false, ['verify']);
const [url, entry] = entries.entries().next().value;
assert.equal(await verifySegment({ ...entry }, readFileSync(`${origin}/${url.slice(root.length)}`), otherKey), false, 'another key verified');
console.log(JSON.stringify({ checked }));
