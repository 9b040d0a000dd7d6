'use strict';

// Echo server on node ws, set up as ws's own Autobahn testee
// (test/autobahn-server.js in websockets/ws): every message is echoed with
// its type, ws's default limits (maxPayload 100 MiB) and UTF-8 validation.
// permessage-deflate is on, as in the run behind ws's published report
// (http://websockets.github.io/ws/autobahn/servers/), whose handshakes show
// the server accepting the suite's offers.
//
//   node server.js [port]      (port 0 picks a free one)
//
// Prints "echo server on ws://127.0.0.1:PORT" on stderr once listening.

const WebSocket = require('ws');

const port = process.argv.length > 2 ? Number(process.argv[2]) : 9001;
const wss = new WebSocket.Server(
  { host: '127.0.0.1', port, perMessageDeflate: true },
  () => {
    console.error(`echo server on ws://127.0.0.1:${wss.address().port}`);
  }
);

wss.on('connection', (conn) => {
  conn.on('message', (data, isBinary) => {
    conn.send(data, { binary: isBinary });
  });
  conn.on('error', () => {});
});
