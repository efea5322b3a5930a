#!/usr/bin/env node
// An open BitTorrent tracker for the demo, the tests and the benchmarks: the server of the
// `bittorrent-tracker` npm package (pinned in web/package-lock.json), speaking HTTP announce
// and scrape, and WebSocket for browsers (WebTorrent signalling). UDP (BEP 15) only with --udp.
//
//   node web/tools/tracker.mjs [--host 127.0.0.1] [--port 8000] [--udp] [--interval-secs 600]
//
// Prints one line "tracker listening on http://HOST:PORT/announce ws://HOST:PORT" when ready,
// and stops cleanly on SIGTERM or SIGINT.
import Server from 'bittorrent-tracker/server'

function parse (argv) {
  const opts = { host: '127.0.0.1', port: 8000, udp: false, intervalSecs: 600 }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    const value = () => {
      const v = argv[++i]
      if (v === undefined) usage(`${flag} needs a value`)
      return v
    }
    if (flag === '--host') opts.host = value()
    else if (flag === '--port') opts.port = Number(value())
    else if (flag === '--udp') opts.udp = true
    else if (flag === '--interval-secs') opts.intervalSecs = Number(value())
    else usage(`unknown flag ${flag}`)
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) usage('--port: expected 0..65535')
  if (!(opts.intervalSecs > 0)) usage('--interval-secs: expected a positive number')
  return opts
}

function usage (problem) {
  console.error(`tracker: ${problem}\nusage: tracker.mjs [--host IP] [--port N] [--udp] [--interval-secs S]`)
  process.exit(2)
}

const opts = parse(process.argv.slice(2))
const server = new Server({
  http: true,
  ws: true,
  udp: opts.udp,
  stats: true,
  trustProxy: false,
  interval: opts.intervalSecs * 1000
})
server.on('error', err => console.error(`tracker: error: ${err.message}`))
server.on('warning', err => console.error(`tracker: warning: ${err.message}`))
server.on('start', addr => console.error(`tracker: start from ${addr}`))
server.on('complete', addr => console.error(`tracker: complete from ${addr}`))
server.on('stop', addr => console.error(`tracker: stop from ${addr}`))
server.listen(opts.port, opts.host, () => {
  const port = server.http.address().port
  console.log(`tracker listening on http://${opts.host}:${port}/announce ws://${opts.host}:${port}`)
})
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)))
}
