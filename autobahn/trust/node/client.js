'use strict';

// Autobahn fuzzingserver client on node ws, set up as ws's own testee
// (test/autobahn.js in websockets/ws): client defaults (permessage-deflate
// offered, maxPayload 100 MiB, UTF-8 validated), every message echoed with
// its type, one case after the other, then /updateReports.
//
//   node client.js [url] [agent]     (defaults ws://127.0.0.1:9001, ws)

const WebSocket = require('ws');

const base = process.argv[2] || 'ws://127.0.0.1:9001';
const agent = encodeURIComponent(process.argv[3] || 'ws');

function open(path, onMessage, onClose) {
  const conn = new WebSocket(base + path);
  conn.on('message', (data, isBinary) => onMessage(conn, data, isBinary));
  conn.on('close', onClose);
  conn.on('error', () => {});
}

let count = 0;

function runCase(n) {
  if (n > count) {
    open(`/updateReports?agent=${agent}`, () => {}, () => {});
    return;
  }
  open(
    `/runCase?case=${n}&agent=${agent}`,
    (conn, data, isBinary) => conn.send(data, { binary: isBinary }),
    () => process.nextTick(runCase, n + 1)
  );
}

open(
  '/getCaseCount',
  (conn, data) => {
    count = parseInt(data.toString(), 10);
  },
  () => {
    if (count > 0) runCase(1);
  }
);
