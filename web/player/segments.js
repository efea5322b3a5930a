// The #EXT-X-SWARMPACK-SEGMENT tags of a media playlist, and the check of a segment's bytes
// against its tag: length, SHA-256 and the Ed25519 signature over six lines (CONTRACT.md,
// "Segment signatures in media playlists"):
//   swarmpack-segment/1, the path below the origin root, the length, the SHA-256 (hex), the
//   key URI as the playlist writes it, the IV as 32 lowercase hex digits.
// Pure apart from WebCrypto, so node runs it too (web/test/segments.mjs).
import { hex, verifyEd25519 } from './shared.js';

function attrs(text) {
  const out = {};
  for (const m of text.matchAll(/([A-Z0-9-]+)=("[^"]*"|[^,]*)/g)) out[m[1]] = m[2].replace(/^"|"$/g, '');
  return out;
}

/**
 * Every tagged segment of a media playlist, by absolute URL: `{path, bytes, sha256, sig,
 * keyUri, iv}`. `base` is the playlist's own URL; `root` the origin root the paths are below.
 */
export function parseMediaPlaylist(text, base, root) {
  const out = new Map();
  let key = { uri: '', iv: '' };
  let tag = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#EXT-X-KEY:')) {
      const a = attrs(line.slice('#EXT-X-KEY:'.length));
      key = a.METHOD === 'NONE' ? { uri: '', iv: '' } : { uri: a.URI || '', iv: (a.IV || '').replace(/^0x/i, '').toLowerCase() };
    } else if (line.startsWith('#EXT-X-SWARMPACK-SEGMENT:')) {
      const a = attrs(line.slice('#EXT-X-SWARMPACK-SEGMENT:'.length));
      tag = { bytes: Number(a.BYTES), sha256: (a.SHA256 || '').toLowerCase(), sig: a.SIG || '' };
    } else if (line && !line.startsWith('#')) {
      const url = new URL(line, base).href;
      const path = decodeURIComponent(url.startsWith(root) ? url.slice(root.length) : new URL(url).pathname.slice(1));
      if (tag) out.set(url, { path, ...tag, keyUri: key.uri, keyUrl: key.uri && new URL(key.uri, base).href, iv: key.iv });
      tag = null;
    }
  }
  return out;
}

function base64url(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  return Uint8Array.from(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
}

/** The exact bytes the tag's SIG signs. */
export function message(e) {
  return new TextEncoder().encode(`swarmpack-segment/1\n${e.path}\n${e.bytes}\n${e.sha256}\n${e.keyUri}\n${e.iv}\n`);
}

/**
 * Whether `entry`'s tag is signed by `key` (an Ed25519 public key as shared.js's loadPubkey
 * gives it): the match key vouches for its path, length, SHA-256, key URI and IV. Checked once
 * and remembered on the entry.
 */
export function verifyTag(entry, key) {
  if (!entry || !key) return Promise.resolve(false);
  if (!entry.signed) {
    let sig;
    try {
      sig = base64url(entry.sig);
    } catch {
      sig = new Uint8Array(0);
    }
    entry.signed = sig.length === 64
      ? verifyEd25519(key, sig, message(entry)).catch(() => false)
      : Promise.resolve(false);
  }
  return entry.signed;
}

/** Whether `data` is the segment `entry` describes, signed by `key`. */
export async function verifySegment(entry, data, key) {
  if (!entry || !key || data.byteLength !== entry.bytes) return false;
  if (hex(await crypto.subtle.digest('SHA-256', data)) !== entry.sha256) return false;
  return verifyTag(entry, key);
}

/**
 * Whether `sig` (64 raw bytes, as `{document}.sig` holds them) is `key`'s signature over the
 * exact bytes of a signed document (p2p.json, live.json).
 */
export async function verifyDocument(bytes, sig, key) {
  if (!key || sig.byteLength !== 64) return false;
  try {
    return await verifyEd25519(key, new Uint8Array(sig), new Uint8Array(bytes));
  } catch {
    return false;
  }
}

/**
 * The signed segments of every media playlist a page has loaded, and what they vouch for:
 * the segments' bytes, and the key URLs the viewer's token may go to. `getKey()` gives the
 * match key (null when this browser cannot verify).
 */
export class SignedSegments {
  constructor(root, getKey) {
    this.root = root;
    this.getKey = getKey;
    this.byUrl = new Map(); // segment URL -> its tag
    this.keyUrls = new Map(); // key URL -> a few tagged segments that name it
  }

  /** Takes the tags of a media playlist loaded from `url`. */
  addPlaylist(text, url) {
    for (const [segUrl, entry] of parseMediaPlaylist(text, url, this.root)) {
      if (this.byUrl.has(segUrl)) continue;
      this.byUrl.set(segUrl, entry);
      if (!entry.keyUrl) continue;
      if (!this.keyUrls.has(entry.keyUrl)) this.keyUrls.set(entry.keyUrl, []);
      const named = this.keyUrls.get(entry.keyUrl);
      if (named.length < 4) named.push(entry);
    }
  }

  entry(url) {
    return this.byUrl.get(url);
  }

  /** Whether `data` is the segment at `url`, as its signed tag describes it. */
  check(url, data) {
    return verifySegment(this.byUrl.get(url), data, this.getKey());
  }

  /** Whether a tag signed by the match key names `url` as its key URI. */
  async vouchedKeyUrl(url) {
    for (const entry of this.keyUrls.get(url) || []) {
      if (await verifyTag(entry, this.getKey())) return true;
    }
    return false;
  }

  /**
   * hls.js's `xhrSetup`: the token (from `getToken()`) goes only to key URLs a verified tag
   * names (hls.js waits for the promise).
   */
  xhrSetup(getToken) {
    return async (xhr, url) => {
      const token = getToken();
      if (token && this.keyUrls.has(url) && (await this.vouchedKeyUrl(url))) {
        if (!xhr.readyState) xhr.open('GET', url, true);
        xhr.setRequestHeader('Authorization', `Bearer ${token}`);
      }
    };
  }
}

/** The error text a segment that fails its check comes back to hls.js with. */
export const UNSIGNED_SEGMENT = 'the segment does not match its signed tag';

/**
 * hls.js's loader class `Base`, with every fragment it loads checked by `check(url, bytes)`
 * before hls.js sees it. A fragment that fails comes back to hls.js as a load error
 * ({@link UNSIGNED_SEGMENT}). Playlists and keys pass as they are.
 */
export function verifyingLoader(Base, check) {
  return class extends Base {
    load(context, config, callbacks) {
      if (!context.frag || context.keyInfo) return super.load(context, config, callbacks);
      return super.load(context, config, {
        ...callbacks,
        onProgress: undefined,
        onSuccess: (response, stats, ctx, details) => {
          check(ctx.url, response.data).then((ok) => {
            if (stats.aborted) return;
            if (ok) callbacks.onSuccess(response, stats, ctx, details);
            else callbacks.onError({ code: 0, text: UNSIGNED_SEGMENT }, ctx, details, stats);
          });
        },
      });
    }
  };
}
