// Telemetry: what this fan experiences, reported to the match's collector (the signed
// p2p.json's "telemetry", profile [qoe]; README "Watching the audience") through hls.js's own
// CMCD v2 reporter in event mode: a report when the play state changes, on errors and bitrate
// changes, and every INTERVAL seconds, posted as application/cmcd text. CMCD has no keys for
// peer-to-peer, so the player adds its running totals as custom keys (io.swarmpack-*, the
// spec's rule for custom keys). Off with ?telemetry=off on /watch, mount(…, {telemetry: false}),
// or [qoe] telemetry = false in the profile.
//
// Nothing rides on media requests: CMCD in query mode would rewrite segment URLs, and so
// p2p-media-loader's segment IDs (peers would stop finding each other's segments), and in
// headers it would cost every request to the origin a CORS preflight.

/** Seconds between time-interval reports. */
export const INTERVAL = 10;

const CUSTOM = ['p2pb', 'httpb', 'relayb', 'rej', 'peers', 'behind', 'startup', 'stalls', 'stallms', 'rung']
  .map((k) => `io.swarmpack-${k}`);

/** The CMCD keys sent: the session, the state, the media playing, and swarmpack's own. */
const KEYS = ['v', 'sid', 'cid', 'e', 'ts', 'sn', 'sta', 'br', 'bl', 'pt', 'pr', 'ec', ...CUSTOM];

/**
 * hls.js's `cmcd` config for posting to `url`; `onReporter` gets the reporter that takes the
 * custom keys (updateCustomData).
 */
export function cmcdConfig({ url, sessionId, contentId, onReporter, interval = INTERVAL }) {
  return {
    version: 2,
    sessionId,
    contentId,
    includeKeys: [],
    useHeaders: true,
    eventTargets: [{ url, events: ['ps', 'e', 't', 'bc'], interval, batchSize: 1, includeKeys: KEYS }],
    reporterCallback: onReporter,
  };
}

/**
 * A random version-4 UUID for the CMCD session ID. crypto.randomUUID exists only in secure
 * contexts, and the player also runs outside one (with peer-to-peer off).
 */
export function sessionId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The custom keys from the player's counters (integers: bytes, milliseconds, counts). */
export function customData(player, rung) {
  const s = player.stats;
  const data = {
    'io.swarmpack-p2pb': Math.round(s.p2pBytes),
    'io.swarmpack-httpb': Math.round(s.httpBytes),
    'io.swarmpack-relayb': Math.round(s.relayBytes || 0),
    'io.swarmpack-rej': Math.round(s.p2pRejected),
    'io.swarmpack-peers': Math.round(s.peers),
    'io.swarmpack-stalls': Math.round(s.stalls),
    'io.swarmpack-stallms': Math.round(1000 * s.stallSeconds),
  };
  if (s.behindLiveSeconds !== null && s.behindLiveSeconds >= 0) data['io.swarmpack-behind'] = Math.round(1000 * s.behindLiveSeconds);
  if (player.startupSeconds !== null) data['io.swarmpack-startup'] = Math.round(1000 * player.startupSeconds);
  if (rung) data['io.swarmpack-rung'] = rung;
  return data;
}

/** The rung of an hls.js level: the directory of its playlist (`…/{angle}/{rung}/index.m3u8`). */
export function rungOf(level) {
  const url = level && (Array.isArray(level.url) ? level.url[0] : level.url);
  if (!url) return null;
  try {
    return new URL(url).pathname.split('/').at(-2) || null;
  } catch {
    return null;
  }
}
