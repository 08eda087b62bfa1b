#!/usr/bin/env node
// Node side of the store compatibility tests: an HTTP server running
// express-session 1.19.0 on a Node session store, at the versions pinned in
// package-lock.json. The Go tests start it (internal/nodecheck/nodecheck.go)
// and talk to it over HTTP with the same cookie a galleta Manager uses.
//
//   node server.js STORE CONFIG_JSON
//
// STORE picks the Node store: "redis" (connect-redis with the redis
// client) or "pg" (connect-pg-simple with pg). CONFIG_JSON: {"url": store
// URL, "prefix": key prefix (redis), "schema" and "table": schemaName and
// tableName (pg), "timezone": the TimeZone of pg's connections (optional,
// sent as the startup option -c TimeZone=...), "secret": cookie secret,
// "ttl": store ttl in seconds (optional), "maxAge": cookie maxAge in ms
// (optional, null: browser-session cookie)}.
//
// It prints "listening PORT" on stdout once it serves on 127.0.0.1, and
// exits on SIGTERM or when stdin closes (so it never outlives the test).
//
// Routes (every answer is JSON: {"id": sessionID, "session": req.session}):
//   GET  /session             the session as loaded
//   POST /set?k=v&k2=v2       sets each key to JSON.parse(v) (or the string v)
//   POST /incr?k=name         increments a number
//   POST /destroy             req.session.destroy()
//   POST /clock?offset=MS     moves Date.now (which express-session and the
//                             stores read) MS milliseconds from the real
//                             clock; answers {"now": Date.now()}, no session
//
// Install with `npm ci --prefix internal/nodecheck`.
'use strict';

const http = require('http');

// The clock the stores and express-session read, movable by POST /clock so
// a test can ask Node what it considers live at a given instant.
let clockOffset = 0;
const realNow = Date.now;
Date.now = () => realNow() + clockOffset;

const session = require('express-session');

function fail(msg) {
  process.stderr.write('server.js: ' + msg + '\n');
  process.exit(1);
}

async function makeStore(kind, cfg) {
  switch (kind) {
    case 'redis': {
      const {createClient} = require('redis');
      const {RedisStore} = require('connect-redis');
      const client = createClient({url: cfg.url});
      client.on('error', (e) => process.stderr.write('server.js: redis client: ' + e.message + '\n'));
      await client.connect();
      const opts = {client, prefix: cfg.prefix};
      if (cfg.ttl) opts.ttl = cfg.ttl;
      return {store: new RedisStore(opts), close: () => client.quit()};
    }
    case 'pg': {
      const pg = require('pg');
      const PGStore = require('connect-pg-simple')(session);
      const poolCfg = {connectionString: cfg.url};
      if (cfg.timezone) poolCfg.options = '-c TimeZone=' + cfg.timezone;
      const pool = new pg.Pool(poolCfg);
      pool.on('error', (e) => process.stderr.write('server.js: pg pool: ' + e.message + '\n'));
      const opts = {pool, tableName: cfg.table || 'session', pruneSessionInterval: false};
      if (cfg.schema) opts.schemaName = cfg.schema;
      if (cfg.ttl) opts.ttl = cfg.ttl;
      return {store: new PGStore(opts), close: () => pool.end()};
    }
    default:
      fail('unknown store ' + JSON.stringify(kind) + ': want redis or pg');
  }
}

function parseValue(v) {
  try {
    return JSON.parse(v);
  } catch (e) {
    return v;
  }
}

async function main() {
  const [kind, cfgText] = process.argv.slice(2);
  if (!kind || !cfgText) fail('usage: server.js STORE CONFIG_JSON');
  let cfg;
  try {
    cfg = JSON.parse(cfgText);
  } catch (e) {
    fail('CONFIG_JSON: ' + e.message);
  }
  const {store, close} = await makeStore(kind, cfg);
  const mw = session({
    store,
    secret: cfg.secret,
    name: 'connect.sid',
    resave: false,
    saveUninitialized: false,
    cookie: {maxAge: cfg.maxAge == null ? null : cfg.maxAge},
  });

  const server = http.createServer((req, res) => {
    if (req.method === 'POST' && req.url.startsWith('/clock?')) {
      clockOffset = Number(new URL(req.url, 'http://x').searchParams.get('offset')) || 0;
      res.setHeader('Content-Type', 'application/json');
      return res.end(JSON.stringify({now: Date.now()}));
    }
    mw(req, res, (err) => {
      const reply = (code, body) => {
        res.statusCode = code;
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify(body));
      };
      if (err) return reply(500, {error: String(err && err.stack || err)});
      const url = new URL(req.url, 'http://x');
      const s = req.session;
      switch (req.method + ' ' + url.pathname) {
        case 'GET /session':
          break;
        case 'POST /set':
          for (const [k, v] of url.searchParams) s[k] = parseValue(v);
          break;
        case 'POST /incr': {
          const k = url.searchParams.get('k');
          s[k] = (typeof s[k] === 'number' ? s[k] : 0) + 1;
          break;
        }
        case 'POST /destroy':
          return s.destroy((e) => (e ? reply(500, {error: String(e)}) : reply(200, {id: null, session: null})));
        default:
          return reply(404, {error: 'no route ' + req.method + ' ' + url.pathname});
      }
      reply(200, {id: req.sessionID, session: s});
    });
  });
  const stop = () => server.close(() => Promise.resolve(close()).finally(() => process.exit(0)));
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write('listening ' + server.address().port + '\n');
  });
}

process.on('uncaughtException', (e) => fail('uncaught: ' + (e.stack || e)));
process.on('unhandledRejection', (e) => fail('unhandled rejection: ' + (e && e.stack || e)));
main();
