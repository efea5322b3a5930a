// Which network path each WebRTC connection of this page took, and how many bytes came in
// through a TURN relay (they cost the operator like HTTP and are not offload).
//
// p2p-media-loader (through simple-peer) takes `RTCPeerConnection` from the page once, when its
// module loads, so player.js imports this module first: it puts a subclass in its place that
// watches, and changes one thing only: a connection configured with TURN credentials this
// player was given gets the newest ones instead (they expire; p2p-media-loader keeps the
// configuration it started with). Each connection's data-channel
// messages are counted as they arrive; once connected, and every few seconds after (ICE may
// move to another pair), its selected candidate pair is read from getStats(): a pair with a
// relay candidate on either side goes through TURN, one with host, srflx or prflx candidates
// on both is direct. Every byte a relayed connection received counts in relayBytes.
//
// TURN is the last resort: a relayed byte costs the operator as much as an HTTP byte (more:
// it crosses the relay twice). So a page that holds a direct connection closes a connection
// still relayed RELAY_GRACE_MS after it formed (counted in relayClosed()). Either end may
// close it: a viewer behind a symmetric NAT keeps its relays while it has no direct peer, but
// a viewer behind an ordinary NAT, who has direct peers, closes its end of such a relay too.
// Measured in scripts/swarm-lab (docs/PERFORMANCE.md). The match's delivery policy may keep
// relays instead ([delivery] relay = "keep": relayPolicy).

const Native = globalThis.RTCPeerConnection;
const tracked = new Set(); // every connection of this page, open or closed
let iceServers = null; // the newest ICE servers with TURN credentials (useIceServers)
const minted = new Set(); // every TURN username this page was given
let closedRelays = 0;
let keepRelays = false;
const RELAY_GRACE_MS = 5000;

/** The match's relay policy ([delivery] relay): "last-resort" (the default) or "keep". */
export function relayPolicy(policy) {
  keepRelays = policy === 'keep';
}

/**
 * The ICE servers every new connection configured with credentials of this page gets from now
 * on (the answer of the key server's /ice route, refreshed before its ttl runs out).
 */
export function useIceServers(servers) {
  iceServers = servers;
  for (const s of servers) if (s.username) minted.add(s.username);
}

function withFreshCredentials(config) {
  const ours = iceServers && config && Array.isArray(config.iceServers)
    && config.iceServers.some((s) => s.username && minted.has(s.username));
  return ours ? { ...config, iceServers } : config;
}

/** The kind of path a candidate pair took: 'relay' (TURN) or 'direct'. */
function pathOf(local, remote) {
  return local.candidateType === 'relay' || remote.candidateType === 'relay' ? 'relay' : 'direct';
}

async function classify(conn) {
  if (conn.closed) return;
  let report;
  try {
    report = await conn.pc.getStats();
  } catch {
    return; // closed meanwhile
  }
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) || pair;
  });
  if (!pair) {
    report.forEach((s) => {
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
    });
  }
  if (!pair) return;
  const local = report.get(pair.localCandidateId);
  const remote = report.get(pair.remoteCandidateId);
  if (!local || !remote) return;
  conn.path = pathOf(local, remote);
  conn.local = local.candidateType;
  conn.remote = remote.candidateType;
  // ICE may start on a relayed pair and move to a direct one a moment later (the first pair
  // to answer wins at first): only a connection still relayed after RELAY_GRACE_MS is closed.
  const settled = performance.now() - conn.connectedAt >= RELAY_GRACE_MS;
  const direct = [...tracked].some((c) => c !== conn && c.connected && !c.closed && c.path === 'direct');
  if (conn.path === 'relay' && !keepRelays && settled && direct && !conn.closed) {
    closedRelays += 1;
    conn.pc.close();
  }
}

/** Relayed connections this page closed because it had a direct one. */
export function relayClosed() {
  return closedRelays;
}

function countMessages(conn, channel) {
  channel.addEventListener('message', (e) => {
    const d = e.data;
    conn.received += d.byteLength ?? d.size ?? d.length ?? 0;
  });
}

if (Native && !Native.swarmpackWatched) {
  class WatchedPeerConnection extends Native {
    constructor(config, ...rest) {
      super(withFreshCredentials(config), ...rest);
      const conn = { pc: this, path: null, local: null, remote: null, received: 0, closed: false, connected: false, connectedAt: 0, timer: null };
      tracked.add(conn);
      // Listeners added here run before the ones simple-peer sets afterwards.
      this.addEventListener('datachannel', (e) => countMessages(conn, e.channel));
      this.addEventListener('connectionstatechange', () => {
        const state = this.connectionState;
        if (state === 'connected' && !conn.connected) {
          conn.connected = true;
          conn.connectedAt = performance.now();
          classify(conn);
          conn.timer = setInterval(() => classify(conn), 3000);
        }
        if (state === 'closed' || state === 'failed') {
          conn.closed = true;
          clearInterval(conn.timer);
        }
      });
      const close = this.close.bind(this);
      this.close = () => {
        conn.closed = true;
        clearInterval(conn.timer);
        return close();
      };
    }

    createDataChannel(...args) {
      const channel = super.createDataChannel(...args);
      for (const conn of tracked) if (conn.pc === this) countMessages(conn, channel);
      return channel;
    }
  }
  WatchedPeerConnection.swarmpackWatched = true;
  globalThis.RTCPeerConnection = WatchedPeerConnection;
}

/** Bytes this page received over WebRTC connections that go through a TURN relay. */
export function relayBytes() {
  let n = 0;
  for (const c of tracked) if (c.path === 'relay') n += c.received;
  return n;
}

/**
 * Every connection that reached 'connected': {path: 'direct'|'relay'|null (not read yet),
 * local, remote (candidate types: host, srflx, prflx, relay), received (bytes), open}.
 */
export function connections() {
  return [...tracked]
    .filter((c) => c.connected)
    .map((c) => ({ path: c.path, local: c.local, remote: c.remote, received: c.received, open: !c.closed }));
}
