// The segments this page holds for its peers: p2p-media-loader's segment storage
// (`customSegmentStorageFactory`, the SegmentStorage interface of p2p-media-loader-core 2.x),
// written here because the player also puts in segments it fetched early (web/player/early.js)
// without p2p-media-loader asking for them. A segment put in is announced to the peers at once.
//
// Only verified bytes come in: p2p-media-loader stores what passed validateP2PSegment or
// validateHTTPSegment, and the early fetcher what passed the same check.
//
// Live streams keep a segment until the playhead is `keepBehind` seconds past its end (a viewer
// who joined a little later may still ask for it), and the whole cache under `limitBytes`,
// oldest first.

export class SegmentCache {
  constructor({ keepBehind, limitBytes = 256 * 1024 * 1024 }) {
    this.keepBehind = keepBehind;
    this.limitBytes = limitBytes;
    this.items = new Map(); // `${streamId}|${segmentId}` -> {streamId, segmentId, data, startTime, endTime}
    this.bytes = 0;
    this.position = 0;
    this.changed = null;
    // hls.js level index -> p2p-media-loader's stream ID, learnt from the requests it makes.
    this.levelStreams = new Map();
    this.expect = null;
  }

  // ---- SegmentStorage ----
  async initialize() {}

  onPlaybackUpdated(position) {
    this.position = position;
  }

  onSegmentRequested(_swarmId, streamId, segmentId, _start, _end, streamType) {
    const e = this.expect;
    if (e && streamType === 'main' && e.sn === segmentId) this.levelStreams.set(e.level, streamId);
  }

  async storeSegment(_swarmId, streamId, segmentId, data, startTime, endTime, _type, isLive) {
    this.add(streamId, segmentId, data, startTime, endTime, isLive);
  }

  async getSegmentData(_swarmId, streamId, segmentId) {
    return this.items.get(`${streamId}|${segmentId}`)?.data;
  }

  getUsage() {
    // In MiB, as p2p-media-loader's own storage answers; what lies ahead of the playhead.
    let ahead = 0;
    for (const it of this.items.values()) if (it.endTime >= this.position) ahead += it.data.byteLength;
    return { totalCapacity: this.limitBytes / 1048576, usedCapacity: ahead / 1048576 };
  }

  hasSegment(_swarmId, streamId, segmentId) {
    return this.items.has(`${streamId}|${segmentId}`);
  }

  getStoredSegmentIds(_swarmId, streamId) {
    const ids = [];
    for (const it of this.items.values()) if (it.streamId === streamId) ids.push(it.segmentId);
    return ids;
  }

  setSegmentChangeCallback(callback) {
    this.changed = callback;
  }

  destroy() {
    this.items.clear();
    this.bytes = 0;
  }

  // ---- for the player ----

  /** The next p2p-media-loader request should be for segment `sn` of hls.js level `level`. */
  expectRequest(level, sn) {
    this.expect = { level, sn };
  }

  /** Whether this page holds segment `sn` of hls.js level `level`. */
  has(level, sn) {
    const stream = this.levelStreams.get(level);
    return stream !== undefined && this.items.has(`${stream}|${sn}`);
  }

  /**
   * Puts in a verified segment of hls.js level `level` fetched without p2p-media-loader, and
   * announces it to the peers. False when the level's stream is not known yet (p2p-media-loader
   * has not loaded a segment of it): the segment is then only played, not shared.
   */
  put(level, sn, data, startTime, endTime) {
    const stream = this.levelStreams.get(level);
    if (stream === undefined) return false;
    this.add(stream, sn, data, startTime, endTime, true);
    return true;
  }

  add(streamId, segmentId, data, startTime, endTime, isLive) {
    const id = `${streamId}|${segmentId}`;
    if (this.items.has(id)) return;
    const touched = this.evict(isLive, data.byteLength);
    this.items.set(id, { streamId, segmentId, data, startTime, endTime });
    this.bytes += data.byteLength;
    touched.add(streamId);
    if (this.changed) for (const s of touched) this.changed(s);
  }

  evict(isLive, incoming) {
    const touched = new Set();
    const oldestFirst = [...this.items.entries()].sort((a, b) => a[1].startTime - b[1].startTime);
    for (const [id, it] of oldestFirst) {
      const played = isLive && this.position > it.endTime + this.keepBehind;
      const full = this.bytes + incoming > this.limitBytes && this.position > it.endTime;
      if (!played && !full) continue;
      this.items.delete(id);
      this.bytes -= it.data.byteLength;
      touched.add(it.streamId);
    }
    return touched;
  }
}
