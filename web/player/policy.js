// The delivery policy: latency against offload. It comes from the match's signed p2p.json
// (profile `[delivery]`, README "Latency against offload"), so an operator chooses per match
// without a new player; the measurements behind the defaults are in docs/PERFORMANCE.md.
//
// Times are seconds of media:
//   behind_live    the playhead sits this far behind the end of the newest segment (hls.js
//                  liveSyncDuration); fans see about this plus half a segment behind the action
//   urgent         after the playhead: over HTTP at once when no peer has it
//   early_fetchers k: per new segment, the first viewer of each neighbourhood fetches it over
//                  HTTP when the playlist names it, k - 1 backups later if it has not reached them
//                  (web/player/early.js); 0: p2p-media-loader's random HTTP fetches instead
//   relay          "last-resort" (a relayed connection closes when a direct one exists) or "keep"
//   alone_after    with no peer this long, play as plain HLS until one connects
//   startup_wait   a joining viewer waits this long for peers before its first HTTP fetch

/** The policy of a p2p.json; a document without one (packaged before [delivery]) gets the run's defaults. */
export function policyOf(doc, segmentSeconds) {
  const d = doc && doc.delivery;
  if (d && typeof d.segment === 'number') return { ...d };
  const s = segmentSeconds;
  return { segment: s, behind_live: 3 * s, urgent: 0.5 * s, early_fetchers: 1, relay: 'last-resort', alone_after: 2 * s, startup_wait: 0 };
}

/**
 * p2p-media-loader's time windows. Alone (no peer): everything up to the live edge is urgent.
 * With fetch-early, segments enter the swarm from the early fetchers, so the random HTTP
 * window shrinks to the urgent one; without it, p2p-media-loader's random fetches are how they
 * enter, anywhere up to a segment before the live edge.
 */
export function coreWindows(p, alone = false) {
  const edge = p.behind_live + p.segment;
  return {
    highDemandTimeWindow: alone ? edge : p.urgent,
    httpDownloadTimeWindow: alone ? edge : p.early_fetchers > 0 ? p.urgent : Math.max(p.urgent, p.behind_live - p.segment),
    p2pDownloadTimeWindow: edge,
  };
}

/** The policy in words, for the page. */
export function describe(p) {
  const s = (v) => `${Number(v.toFixed(1))} s`;
  const early = p.early_fetchers > 0
    ? `A new segment is fetched over HTTP by one viewer in each group of peers as soon as it is published${p.early_fetchers > 1 ? ` (${p.early_fetchers - 1} more as backup)` : ''}, and the others take it from peers.`
    : 'One viewer in a few fetches a new segment over HTTP and the others take it from peers.';
  return `The player sits about ${s(p.behind_live + p.segment / 2)} behind live. ${early} ` +
    `The next ${s(p.urgent)} after the playhead come over HTTP when no peer has them` +
    `${p.startup_wait > 0 ? `, and at the start it waits up to ${s(p.startup_wait)} for peers` : ''}. ` +
    `With no peer for ${s(p.alone_after)} it plays everything over HTTP until one connects.` +
    `${p.relay === 'keep' ? ' TURN-relayed peers are kept.' : ' A TURN-relayed peer is dropped when a direct one is there.'}`;
}
