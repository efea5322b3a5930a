// What the operator preview (app.js) and the fans' player (player.js, watch.js) share: the match ID
// rule, fetching, the viewer token, the pinned public key and the playlists' angles.

// A match ID as swarmpack accepts one: it is only ever a path segment on this server.
export const MATCH_ID = /^[a-z0-9][a-z0-9_-]{0,31}$/;

export async function fetchOk(path, kind) {
  const r = await fetch(path, { cache: 'no-store' });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return kind === 'bytes' ? new Uint8Array(await r.arrayBuffer()) : r.text();
}

export function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

export async function getToken(match) {
  const given = new URLSearchParams(location.search).get('token') || sessionStorage.getItem(`token:${match}`);
  if (given) return { token: given, state: 'given', label: 'viewer token given' };
  const session = `preview-${Math.random().toString(36).slice(2, 10)}`;
  const r = await fetch(`/dev-token?match=${encodeURIComponent(match)}&session=${session}`, { cache: 'no-store' });
  if (r.ok) return { token: (await r.text()).trim(), state: 'dev', label: 'dev token (1 h)' };
  return { token: null, state: 'none', label: 'no viewer token' };
}

export function keyErrorText(code, short) {
  const status = `HTTP ${code || 'no response'}`;
  if (short) return `Key error (${status})`;
  const why =
    code === 401
      ? 'no valid viewer token (serve without --dev-tokens: paste one from `swarmpack token`)'
      : code === 403
        ? 'the token is for another match'
        : 'the key server did not answer';
  return `Key error: the key server refused the content key (${status}): ${why}`;
}

export function pemToDer(pem) {
  const b64 = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

/**
 * The key every signature is checked against: the one `serve --keys` pins at
 * /.player/pubkey.pem on the server this module came from, never the pubkey.pem of the origin
 * under check. `pin` (hex SHA-256 of the key's SPKI DER, as
 * `openssl pkey -pubin -outform DER | sha256sum` prints it) also pins it against the server.
 */
export async function loadPubkey(pin) {
  if (!window.isSecureContext || !crypto.subtle) {
    return { reason: 'cannot verify here: not a secure context (open the page on localhost or over https)' };
  }
  const der = pemToDer(await fetchOk(new URL('pubkey.pem', import.meta.url)));
  if (pin && hex(await crypto.subtle.digest('SHA-256', der)) !== pin.toLowerCase()) {
    return { reason: 'not verified: the server\'s public key does not match &pin= in the address' };
  }
  try {
    const key = await crypto.subtle.importKey('spki', der, { name: 'Ed25519' }, false, ['verify']);
    return { key, via: 'WebCrypto' };
  } catch (e) {
    // No Ed25519 in this browser's WebCrypto: @noble/ed25519 (pure JS, from npm, served
    // beside this module) checks the signatures instead.
    const raw = rawEd25519(der);
    if (!raw) return { reason: 'cannot verify here: the pinned key is not an Ed25519 key' };
    try {
      return { key: { raw, noble: await import('./ed25519.js') }, via: 'pure-JS Ed25519' };
    } catch (e2) {
      return { reason: `cannot verify here: no Ed25519 in WebCrypto (${e.name}) and ${e2.message}` };
    }
  }
}

const ED25519_SPKI_PREFIX = '302a300506032b6570032100';

/** The 32-byte public key inside an Ed25519 SubjectPublicKeyInfo (RFC 8410), or null. */
export function rawEd25519(der) {
  return der.length === 44 && hex(der.slice(0, 12)) === ED25519_SPKI_PREFIX ? der.slice(12) : null;
}

/**
 * Whether `sig` is `key`'s Ed25519 signature of `message`; `key` is what loadPubkey gave: a
 * WebCrypto key, or `{raw, noble}` (strict RFC 8032 checks, as WebCrypto and OpenSSL make).
 */
export async function verifyEd25519(key, sig, message) {
  if (key.noble) return key.noble.verifyAsync(sig, message, key.raw, { zip215: false }).catch(() => false);
  return crypto.subtle.verify({ name: 'Ed25519' }, key, sig, message);
}

/** Angle names, in order, from the match's multivariant playlist (EXT-X-MEDIA URIs). */
export function parseAngles(master) {
  const angles = [];
  for (const line of master.split('\n')) {
    const uri = line.startsWith('#EXT-X-MEDIA:') && /URI="([^"/]+)\//.exec(line);
    if (uri && !angles.includes(uri[1])) angles.push(uri[1]);
  }
  return angles;
}
