// Interop client for the wscoro echo server, using the npm package `ws` (8.x)
// installed in test/interop/node_modules.
//
// Usage: node node_client.mjs ws://127.0.0.1:PORT
//        node node_client.mjs wss://127.0.0.1:PORT/ --ca CERT.pem
//
// With wss:// every connection verifies the server certificate (chain and host
// name) against CERT.pem only, and one more case checks that a client trusting
// only the default store fails the TLS handshake while the server keeps serving.
//
// Every case opens its own connection, so one failure does not cascade. Prints
// `PASS name` or `FAIL name: why` per case and ends with `N passed, M failed`;
// exits 0 iff nothing failed, 77 if the ws module is missing.

import { readFileSync } from 'node:fs';

let WebSocket;
try {
  ({ WebSocket } = await import('ws'));
} catch (err) {
  console.log(`SKIP: npm package ws not importable: ${err.message}`);
  process.exit(77);
}

const T = 5000;       // bound (ms) for every ordinary wait
const T_BIG = 30000;  // bound (ms) for waits in the 1 MiB cases
const MIB = 1024 * 1024;
const MAX_SIZE = 4 * MIB;

// With wss://: the --ca certificate (PEM), the only one the client trusts (set in main()).
let tlsCa = null;
// OpenSSL's verification errors for a self-signed certificate nobody trusts.
const UNTRUSTED_CODES = ['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN'];

class CheckFailed extends Error {}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CheckFailed(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// A message is {binary: bool, data: Buffer}.
const text = (s) => ({ binary: false, data: Buffer.from(s, 'utf8') });
const binary = (b) => ({ binary: true, data: Buffer.from(b) });
const describe = (m) => `${m.binary ? 'binary' : 'text'} of ${m.data.length} bytes`;

function compare(expected, got) {
  if (expected.binary !== got.binary) {
    throw new CheckFailed(`expected ${describe(expected)}, got ${describe(got)}`);
  }
  if (expected.data.equals(got.data)) return;
  if (expected.data.length !== got.data.length) {
    throw new CheckFailed(`length ${got.data.length} bytes, expected ${expected.data.length}`);
  }
  let i = 0;
  while (expected.data[i] === got.data[i]) i++;
  throw new CheckFailed(`first differing byte at offset ${i}: got 0x${got.data[i].toString(16)}, ` +
                        `expected 0x${expected.data[i].toString(16)}`);
}

// Wraps a ws client: queues incoming messages and pongs, records the close.
class Conn {
  // tls: extra options for tls.connect on wss:// (default: trust only the --ca certificate).
  constructor(url, tls = null) {
    const opts = { maxPayload: MAX_SIZE, handshakeTimeout: T };
    if (url.startsWith('wss:')) Object.assign(opts, tls ?? { ca: tlsCa });
    this.ws = new WebSocket(url, opts);
    this.messages = [];
    this.pongs = [];
    this.waiters = [];  // callbacks re-checked on every event
    this.closed = null; // {code, reason} once 'close' fired
    this.error = null;
    this.ws.on('open', () => this.wake());
    this.ws.on('message', (data, isBinary) => {
      this.messages.push({ binary: isBinary, data: Buffer.isBuffer(data) ? data : Buffer.concat(data) });
      this.wake();
    });
    this.ws.on('pong', (data) => { this.pongs.push(Buffer.from(data)); this.wake(); });
    this.ws.on('close', (code, reason) => { this.closed = { code, reason: reason.toString() }; this.wake(); });
    this.ws.on('error', (err) => { this.error = err; this.wake(); });
  }

  wake() {
    for (const w of [...this.waiters]) w();
  }

  // Resolves with poll()'s first non-undefined result; rejects on error/close or timeout.
  // The waiter is one-shot: once settled (or timed out) it never calls poll() again,
  // so a later event cannot make it consume a message nobody will see.
  until(poll, ms, what, { allowClose = false } = {}) {
    let done = false;
    let waiter;
    const finish = () => {
      done = true;
      this.waiters = this.waiters.filter((w) => w !== waiter);
    };
    const p = new Promise((resolve, reject) => {
      waiter = () => {
        if (done) return;
        const v = poll();
        if (v !== undefined) {
          finish();
          resolve(v);
        } else if (this.error) {
          finish();
          reject(new CheckFailed(`${what}: connection error: ${this.error.message}`));
        } else if (this.closed && !allowClose) {
          finish();
          reject(new CheckFailed(`${what}: connection closed (code ${this.closed.code})`));
        }
      };
      this.waiters.push(waiter);
      waiter();
    });
    return withTimeout(p, ms, what).finally(finish);
  }

  open(ms = T) {
    return this.until(() => (this.ws.readyState === WebSocket.OPEN ? true : undefined), ms, 'open');
  }

  send(msg, ms = T) {
    return withTimeout(new Promise((resolve, reject) => {
      this.ws.send(msg.data, { binary: msg.binary }, (err) => (err ? reject(err) : resolve()));
    }), ms, 'send');
  }

  recv(ms = T) {
    return this.until(() => (this.messages.length ? this.messages.shift() : undefined), ms, 'message');
  }

  waitClosed(ms = T) {
    return this.until(() => this.closed ?? undefined, ms, 'close', { allowClose: true });
  }

  async closeQuietly(ms = T) {
    try {
      if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
      await this.waitClosed(ms);
    } catch {
      this.ws.terminate();
    }
  }
}

async function withConn(url, ms, body) {
  const c = new Conn(url);
  try {
    await c.open(ms);
    await body(c);
  } finally {
    await c.closeQuietly(ms);
  }
}

function echoOne(url, msg, ms = T) {
  return withConn(url, ms, async (c) => {
    await c.send(msg, ms);
    compare(msg, await c.recv(ms));
  });
}

// Exactly `size` bytes of UTF-8 mixing 1-, 2-, 3- and 4-byte sequences.
function bigText(size) {
  const unit = Buffer.from('wscoro κόσμε €uro 𝄞 ', 'utf8');
  const buf = Buffer.alloc(size, 'x');
  const whole = Math.floor(size / unit.length);
  for (let i = 0; i < whole; i++) unit.copy(buf, i * unit.length);
  return { binary: false, data: buf };
}

function bigBinary(size) {
  const buf = Buffer.alloc(size);
  for (let i = 0; i < size; i++) buf[i] = (i * 31 + (i >> 8) * 7) & 0xff;
  return { binary: true, data: buf };
}

function casePipelined(url) {
  return withConn(url, T, async (c) => {
    const msgs = [];
    for (let i = 0; i < 100; i++) {
      msgs.push(i % 2 === 0 ? text(`message ${i} κόσμε`) : binary(Buffer.alloc(i + 1, i)));
    }
    await Promise.all(msgs.map((m) => c.send(m)));
    for (let i = 0; i < msgs.length; i++) {
      const got = await c.recv();
      try {
        compare(msgs[i], got);
      } catch (err) {
        throw new CheckFailed(`message ${i}: ${err.message}`);
      }
    }
  });
}

function casePing(url, payload) {
  return withConn(url, T, async (c) => {
    c.ws.ping(payload);
    const pong = await c.until(() => (c.pongs.length ? c.pongs.shift() : undefined), T, 'pong');
    if (!pong.equals(payload)) {
      throw new CheckFailed(`pong payload ${pong.toString('hex')}, expected ${payload.toString('hex')}`);
    }
    // The connection must still echo data after the ping/pong exchange.
    await c.send(text('after ping'));
    compare(text('after ping'), await c.recv());
  });
}

function caseClose(url, code, reason) {
  return withConn(url, T, async (c) => {
    // Exchange one message first so the close happens on a used connection.
    await c.send(text('before close'));
    compare(text('before close'), await c.recv());
    c.ws.close(code, reason);
    const closed = await c.waitClosed();
    if (closed.code !== code) {
      throw new CheckFailed(`server close code ${closed.code} (reason ${JSON.stringify(closed.reason)}), expected ${code}`);
    }
  });
}

async function caseUntrusted(url) {
  // No `ca`: Node's default root store, which does not contain the throw-away certificate.
  const c = new Conn(url, {});
  try {
    let opened = false;
    try {
      await c.open();
      opened = true;
    } catch (err) {
      const code = c.error?.code;
      if (!UNTRUSTED_CODES.includes(code)) {
        throw new CheckFailed(`expected a certificate verification error, got ${code ?? 'no code'}: ${err.message}`);
      }
    }
    if (opened) throw new CheckFailed('connected although the server certificate is not trusted');
  } finally {
    await c.closeQuietly();
  }
  // The server must keep serving after the aborted handshake.
  try {
    await echoOne(url, text('still serving after a rejected handshake'));
  } catch (err) {
    throw new CheckFailed(`verified connection after the rejected one: ${err.message}`);
  }
}

function* cases(url) {
  yield ['text ascii', () => echoOne(url, text('Hello, wscoro!'))];
  yield ['text utf-8 κόσμε', () => echoOne(url, text('κόσμε'))];
  yield ['binary all 256 byte values', () => echoOne(url, binary(Array.from({ length: 256 }, (_, i) => i)))];
  yield ['empty text', () => echoOne(url, text(''))];
  yield ['empty binary', () => echoOne(url, binary([]))];
  for (const size of [125, 126, 65535, 65536]) {
    yield [`text ${size} bytes`, () => echoOne(url, bigText(size))];
    yield [`binary ${size} bytes`, () => echoOne(url, bigBinary(size))];
  }
  yield ['text 1 MiB', () => echoOne(url, bigText(MIB), T_BIG)];
  yield ['binary 1 MiB', () => echoOne(url, bigBinary(MIB), T_BIG)];
  yield ['100 messages pipelined', () => casePipelined(url)];
  yield ['ping with payload -> pong', () => casePing(url, Buffer.from('wscoro-ping'))];
  yield ['ping with 125-byte payload -> pong', () => casePing(url, Buffer.from(Array.from({ length: 125 }, (_, i) => i)))];
  yield ['close 1000 with reason', () => caseClose(url, 1000, 'normal closure')];
  yield ['close 4000 bye', () => caseClose(url, 4000, 'bye')];
  if (url.startsWith('wss:')) {
    yield ['tls: untrusted certificate rejected, server keeps serving', () => caseUntrusted(url)];
  }
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv.length === 1 && argv[0].startsWith('ws:')) {
    // plain ws://
  } else if (argv.length === 3 && argv[0].startsWith('wss:') && argv[1] === '--ca') {
    tlsCa = readFileSync(argv[2]);
  } else {
    console.error(`usage: node ${process.argv[1]} ws://HOST:PORT | wss://HOST:PORT/ --ca CERT.pem`);
    return 2;
  }
  const url = argv[0];
  let passed = 0;
  let failed = 0;
  for (const [name, run] of cases(url)) {
    try {
      await run();
      passed++;
      console.log(`PASS ${name}`);
    } catch (err) {
      failed++;
      console.log(`FAIL ${name}: ${err instanceof CheckFailed ? err.message : `${err.name}: ${err.message}`}`);
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

// Exit explicitly so a stray socket or timer can never keep the process alive.
process.exit(await main());
