// node `ws` as a peer of ws13's interop tests (see ../README.md for the
// agent protocol every peer speaks).
//
//   node peer.mjs server   prints {"event":"listening","urls":{...}} and serves
//   node peer.mjs client   opens one connection per job line read on stdin
//
// Events (open, close, error) go to stdout as JSON lines.
import { WebSocket, WebSocketServer } from 'ws';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import readline from 'node:readline';

const PREFIX = '@@ws13 ';
const GREETING = 'hello from the peer ✓';
const MAX = 64 << 20;

function emit(ev) {
  process.stdout.write(JSON.stringify(ev) + '\n');
}

// agent echoes every data message and obeys the commands of the driver.
// extensions is the Sec-WebSocket-Extensions value of the handshake's
// response, as the peer sent (server) or received (client) it.
function agent(ws, id, extensions, url) {
  const reply = (obj) => ws.send(PREFIX + JSON.stringify(obj), { compress: false });
  // greet=1 in the connection's URL: two messages at once, before
  // anything is read, so that they follow the handshake's response closely.
  if (new URL(url, 'http://x').searchParams.get('greet') === '1') {
    const greet = () => {
      ws.send(GREETING);
      ws.send(Buffer.from(Array.from({ length: 256 }, (_, i) => i)));
    };
    // A client's agent starts before the handshake is done.
    if (ws.readyState === WebSocket.OPEN) greet();
    else ws.once('open', greet);
  }
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.length >= PREFIX.length && data.subarray(0, PREFIX.length).toString() === PREFIX) {
      const cmd = JSON.parse(data.subarray(PREFIX.length).toString());
      switch (cmd.cmd) {
        case 'info':
          reply({ protocol: ws.protocol, extensions: extensions() });
          break;
        case 'frag': {
          // Fragments cut exactly at the given byte offsets, even inside a
          // UTF-8 sequence: ws sends Buffers as they are.
          const buf = Buffer.from(cmd.data, 'base64');
          const cuts = [0, ...cmd.splits, buf.length];
          for (let i = 0; i + 1 < cuts.length; i++) {
            ws.send(buf.subarray(cuts[i], cuts[i + 1]), {
              binary: cmd.type === 'binary', fin: i + 2 === cuts.length, compress: !!cmd.compress,
            });
            // A ping between two fragments, where a control frame may go.
            if (i === cmd.pingAfter) ws.ping(Buffer.from(cmd.pingData, 'base64'));
            // Or a close, which ends the message unfinished.
            if (i === cmd.closeAfter) {
              ws.close(cmd.code, cmd.reason);
              break;
            }
          }
          break;
        }
        case 'ping':
          ws.once('pong', (payload) => reply({ pong: payload.toString('base64') }));
          ws.ping(Buffer.from(cmd.data, 'base64'));
          break;
        case 'close':
          ws.close(cmd.code, cmd.reason);
          break;
        default:
          reply({ error: 'unknown command ' + cmd.cmd });
      }
      return;
    }
    ws.send(data, { binary: isBinary });
  });
  ws.on('close', (code, reason) => emit({ id, event: 'close', code, reason: reason.toString() }));
  ws.on('error', (err) => emit({ id, event: 'error', detail: String(err.message || err) }));
}

// preferred picks the server's first subprotocol that the client offered.
function preferred(offered) {
  for (const p of ['chat.v1', 'chat.v2']) if (offered.has(p)) return p;
  return false;
}

// imposed are the deflate servers that impose a parameter, by URL key.
const imposed = {
  'deflate-snct': { serverNoContextTakeover: true },
  'deflate-cnct': { clientNoContextTakeover: true },
  'deflate-w8': { serverMaxWindowBits: 8, clientMaxWindowBits: 8 },
  'deflate-w9': { serverMaxWindowBits: 9, clientMaxWindowBits: 9 },
  'deflate-w15': { serverMaxWindowBits: 15, clientMaxWindowBits: 15 },
};

// offerOptions turns the driver's offer (RFC 7692 parameter names) into ws's
// perMessageDeflate options.
function offerOptions(offer) {
  const opts = {};
  if (offer.server_no_context_takeover) opts.serverNoContextTakeover = true;
  if (offer.client_no_context_takeover) opts.clientNoContextTakeover = true;
  if (offer.server_max_window_bits) opts.serverMaxWindowBits = offer.server_max_window_bits;
  if (offer.client_max_window_bits) opts.clientMaxWindowBits = offer.client_max_window_bits;
  return opts;
}

function server() {
  const header = (headers) => (headers.find((h) => /^sec-websocket-extensions:/i.test(h)) || '').replace(/^[^:]*:\s*/, '');
  const configs = {
    plain: new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX, handleProtocols: preferred }),
    deflate: new WebSocketServer({ noServer: true, perMessageDeflate: true, maxPayload: MAX, handleProtocols: preferred }),
  };
  // Servers that impose a parameter on whatever the client offers.
  for (const [name, pmd] of Object.entries(imposed)) {
    configs[name] = new WebSocketServer({ noServer: true, perMessageDeflate: pmd, maxPayload: MAX, handleProtocols: preferred });
  }
  for (const wss of Object.values(configs)) {
    wss.on('headers', (headers, req) => { req.extensionsResponse = header(headers); });
  }
  const upgrade = (req, socket, head) => {
    const u = new URL(req.url, 'http://x');
    const wss = configs[u.pathname.slice(1)];
    if (!wss) return socket.destroy();
    wss.handleUpgrade(req, socket, head, (ws) => agent(ws, u.searchParams.get('id'), () => req.extensionsResponse, req.url));
  };
  const notFound = (req, res) => res.writeHead(404).end();
  const srv = http.createServer(notFound).on('upgrade', upgrade);
  // wss:// with the certificate the driver made.
  const tls = https.createServer({
    cert: fs.readFileSync(process.env.INTEROP_TLS_CERT), key: fs.readFileSync(process.env.INTEROP_TLS_KEY),
  }, notFound).on('upgrade', upgrade);
  srv.listen(0, '127.0.0.1', () => tls.listen(0, '127.0.0.1', () => {
    const base = `ws://127.0.0.1:${srv.address().port}/`;
    const urls = {
      plain: base + 'plain', deflate: base + 'deflate', frag: base + 'plain',
      tls: `wss://127.0.0.1:${tls.address().port}/plain`,
    };
    for (const name of Object.keys(imposed)) urls[name] = base + name;
    emit({ event: 'listening', urls });
  }));
}

function client() {
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const job = JSON.parse(line);
    const opts = { maxPayload: MAX, rejectUnauthorized: false };
    if (job.origin) opts.origin = job.origin;
    switch (job.deflate) {
      case 'off': opts.perMessageDeflate = false; break;
      case 'nct': opts.perMessageDeflate = { serverNoContextTakeover: true, clientNoContextTakeover: true }; break;
      case 'offer': opts.perMessageDeflate = offerOptions(job.offer); break;
      default: opts.perMessageDeflate = true; // offers client_max_window_bits
    }
    const ws = new WebSocket(job.url, job.protocols || [], opts);
    let extensions = '';
    ws.on('upgrade', (res) => { extensions = res.headers['sec-websocket-extensions'] || ''; });
    ws.on('open', () => emit({ id: job.id, event: 'open' }));
    agent(ws, job.id, () => extensions, job.url);
  });
  rl.on('close', () => process.exit(0));
}

// The driver holds our stdin: at its EOF the driver is gone, and so are we
// (the client's readline below sees the same EOF).
if (process.argv[2] === 'server') {
  process.stdin.on('end', () => process.exit(0)).resume();
}

if (process.argv[2] === 'server') server();
else if (process.argv[2] === 'client') client();
else { console.error('usage: node peer.mjs server|client'); process.exit(2); }
