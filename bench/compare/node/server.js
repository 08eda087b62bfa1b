// The Express side of galleta's HTTP comparison (bench/compare): the same two
// handlers as the Go servers (GET /new stores a session holding user=alice;
// GET /inc increments a counter in the client's session), served by
// express-session over one of four stores. The Go driver starts it as
//
//   ADDR=127.0.0.1:34567 STORE=memory|file|redis|postgres node --expose-gc server.js
//
// polls GET /ready until it answers, loads /new and /inc, reads the heap
// through GET /_heap and stops it with SIGTERM.
//
// Environment: ADDR, STORE (required); SECRET; SESSION_DIR (file);
// REDIS_URL, REDIS_PREFIX (redis); DATABASE_URL, PG_SCHEMA (postgres).
// Nothing is logged per request.
'use strict';

const express = require('express');
const session = require('express-session');

const env = process.env;
const ADDR = env.ADDR;
const STORE = env.STORE;
const SECRET = env.SECRET || '0123456789abcdef0123456789abcdef-bench';

function die(msg) {
  process.stderr.write(`server.js: ${msg}\n`);
  process.exit(1);
}

if (!ADDR) die('ADDR (host:port) is required');
const colon = ADDR.lastIndexOf(':');
if (colon < 0) die(`ADDR ${JSON.stringify(ADDR)} is not host:port`);
const HOST = ADDR.slice(0, colon).replace(/^\[(.*)\]$/, '$1') || undefined;
const PORT = Number(ADDR.slice(colon + 1));
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) die(`bad port in ADDR ${JSON.stringify(ADDR)}`);

// makeStore returns the express-session store for STORE (undefined means
// express-session's own MemoryStore), after every connection it needs is up,
// and a function that releases those connections.
async function makeStore() {
  switch (STORE) {
    case 'memory':
      return { store: undefined, close: async () => {} };

    case 'file': {
      if (!env.SESSION_DIR) die('STORE=file needs SESSION_DIR');
      const FileStore = require('session-file-store')(session);
      // session-file-store 1.5.0 defaults (lib/session-file-helpers.js), kept:
      // - reads retry on *any* error, ENOENT included: retries 5, factor 1,
      //   minTimeout 50 ms, maxTimeout 100 ms (so an unknown sid costs about
      //   5 x 50 ms before express-session makes a new session);
      // - writes go through write-file-atomic 3.0.3 with its defaults:
      //   tmp file, write, fsync, chown/chmod copied from the old file, rename;
      //   writes to the same file are serialized in-process;
      // - ttl 3600 s, reapInterval 3600 s (timer unref'd), JSON, no encryption.
      const store = new FileStore({ path: env.SESSION_DIR, logFn: () => {} });
      return { store, close: async () => {} };
    }

    case 'redis': {
      const { createClient } = require('redis');
      const { RedisStore } = require('connect-redis');
      const client = createClient({ url: env.REDIS_URL || 'redis://127.0.0.1:6379/0' });
      // Without a listener an 'error' event (e.g. a dropped connection) would
      // crash the process; command errors reach the request as a 500.
      client.on('error', logOnce('redis client error'));
      // node-redis retries a refused first connection forever; fail fast
      // instead (exit 1) so the driver is not left polling /ready.
      await new Promise((resolve, reject) => {
        client.once('error', reject);
        client.connect().then(resolve, reject);
      });
      const prefix = env.REDIS_PREFIX == null ? 'sess:' : env.REDIS_PREFIX;
      const store = new RedisStore({ client, prefix });
      return { store, close: () => client.close() };
    }

    case 'postgres': {
      const pg = require('pg');
      const PgStore = require('connect-pg-simple')(session);
      // pg.Pool defaults: at most 10 connections.
      const pool = new pg.Pool({
        connectionString: env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable',
      });
      pool.on('error', logOnce('pg pool error')); // idle-client errors
      const store = new PgStore({
        pool,
        schemaName: env.PG_SCHEMA || undefined,
        tableName: 'session',
        createTableIfMissing: true,
        // connect-pg-simple's default is to prune expired rows every 15 min
        // (randomized to 50..150 %, timer started on the first get/set);
        // disabled so no DELETE can land inside a measurement.
        pruneSessionInterval: false,
      });
      // The table is created lazily by the first query; do one now so that it
      // exists (and the pool is connected) before /ready answers.
      await new Promise((resolve, reject) =>
        store.get('bench-ready-check', (err) => (err ? reject(err) : resolve())));
      // store.close() would not end a pool it was handed, so end it here.
      return { store, close: async () => { await store.close(); await pool.end(); } };
    }

    default:
      die(`STORE must be memory, file, redis or postgres, not ${JSON.stringify(STORE)}`);
  }
}

// logOnce returns a handler that prints its first error to stderr and then
// only counts, so a failing store under load does not flood the log.
function logOnce(what) {
  let n = 0;
  return (err) => {
    if (n++ === 0) process.stderr.write(`${what}: ${err && err.stack || err}\n`);
  };
}

async function main() {
  const { store, close } = await makeStore();

  const sessions = session({
    store,
    secret: SECRET,
    resave: false,
    saveUninitialized: false,
    // name 'connect.sid' and cookie options left at their defaults
  });

  const app = express();

  // Outside the session middleware.
  app.get('/ready', (req, res) => { res.type('text').send('ok'); });

  app.get('/_heap', (req, res) => {
    if (typeof global.gc !== 'function') {
      res.status(500).type('text').send('global.gc is missing: run node with --expose-gc\n');
      return;
    }
    global.gc();
    global.gc();
    res.type('text').send(String(process.memoryUsage().heapUsed));
  });

  // The two handlers the Go servers also have.
  app.get('/new', sessions, (req, res) => {
    req.session.user = 'alice';
    res.type('text').send('ok');
  });

  app.get('/inc', sessions, (req, res) => {
    const n = (req.session.n || 0) + 1;
    req.session.n = n;
    res.type('text').send(String(n));
  });

  // Anything else.
  app.use((req, res) => { res.status(404).type('text').send('not found\n'); });

  // Store errors come here through next(err), never a crash. A failed load
  // (store.get) becomes a 500. A failed save cannot: express-session saves
  // inside res.end after it has written the headers and all but the last
  // byte of the body, finishes the 200 and only then calls next(err); like
  // express's own final handler, this one then destroys the connection.
  // (That is express-session as its users get it, kept on purpose.) Only
  // the first error is printed (no per-request logging).
  const logErr = logOnce('request error');
  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    logErr(err);
    if (res.headersSent) { res.destroy(); return; }
    res.status(500).type('text').send(`store error: ${err && err.message || err}\n`);
  });

  const server = app.listen(PORT, HOST);
  await new Promise((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.on('error', logOnce('http server error'));
  process.stderr.write(`express-session ${STORE} listening on ${ADDR}\n`);

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    // Keep-alive connections from the load generator would hold close()
    // open; drop idle ones now and any still busy after 2 s.
    const force = setTimeout(() => server.closeAllConnections(), 2000);
    force.unref();
    server.close(async () => {
      clearTimeout(force);
      try {
        await close();
      } catch (err) {
        process.stderr.write(`closing ${STORE} store: ${err && err.message || err}\n`);
      }
      process.exit(0);
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => die(`starting ${STORE} store: ${err && err.stack || err}`));
