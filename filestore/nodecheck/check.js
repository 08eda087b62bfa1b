#!/usr/bin/env node
// Node side of filestore's TestNodeCompat (filestore/node_test.go): drives
// session-file-store 1.5.0 (with express-session 1.19.0's Store) on a
// directory the Go store also uses.
//
//   node check.js get     DIR TTL_SECONDS ID          prints the session store.get returns, or null
//   node check.js set     DIR TTL_SECONDS ID [JSON]   store.set(ID, JSON.parse(JSON)); JSON from stdin when absent
//   node check.js expired DIR TTL_SECONDS ID NOW_MS   prints true or false: session-file-store's verdict at NOW_MS
//
// Errors go to stderr with exit status 1. Install the packages with
// `npm ci --prefix filestore/nodecheck`.
'use strict';

const fs = require('fs');
const path = require('path');
const session = require('express-session');
const FileStore = require('session-file-store')(session);
// The package's own helpers (lib/ is in its published files and there is no
// "exports" map, so a deep require works): isExpired is the rule get uses.
const helpers = require('session-file-store/lib/session-file-helpers');

function fail(msg) {
  process.stderr.write('check.js: ' + msg + '\n');
  process.exit(1);
}

function usage() {
  fail('usage: check.js get|set|expired DIR TTL_SECONDS ID [JSON|NOW_MS]');
}

function readStdin() {
  return fs.readFileSync(0, 'utf8');
}

function main(argv) {
  const [cmd, dir, ttlArg, id, extra] = argv;
  if (!cmd || !dir || !ttlArg || !id) usage();
  const ttl = Number(ttlArg);
  if (!Number.isFinite(ttl) || ttl <= 0) fail('TTL_SECONDS must be a positive number, got ' + JSON.stringify(ttlArg));

  const options = {path: dir, ttl: ttl, retries: 0, reapInterval: -1, logFn: () => {}};
  const store = new FileStore(options);

  switch (cmd) {
    case 'get':
      store.get(id, (err, sess) => {
        if (err) {
          // With retries:0 a missing file is an ENOENT error, which
          // express-session treats as "no session".
          if (err.code === 'ENOENT') {
            process.stdout.write('null\n');
            return;
          }
          fail('get: ' + (err.stack || err));
        }
        process.stdout.write(JSON.stringify(sess === undefined ? null : sess) + '\n');
      });
      return;

    case 'set': {
      const text = extra !== undefined ? extra : readStdin();
      let sess;
      try {
        sess = JSON.parse(text);
      } catch (e) {
        fail('set: session is not JSON: ' + e.message);
      }
      store.set(id, sess, (err) => {
        if (err) fail('set: ' + (err.stack || err));
      });
      return;
    }

    case 'expired': {
      if (extra === undefined || !/^[0-9]+$/.test(extra)) fail('expired: NOW_MS must be unix milliseconds, got ' + JSON.stringify(extra));
      const nowMs = Number(extra);
      // Parse the file as get does (store.get itself would return null for a
      // session expired at the real time, hiding the verdict at NOW_MS).
      const file = helpers.sessionPath(store.options, id);
      let sess;
      try {
        sess = JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch (e) {
        fail('expired: ' + e.message);
      }
      // helpers.isExpired reads the clock with `new Date().getTime()`; run it
      // unchanged with Date swapped for one whose "now" is NOW_MS.
      const RealDate = global.Date;
      class FixedDate extends RealDate {
        constructor(...args) {
          if (args.length === 0) super(nowMs);
          else super(...args);
        }
        static now() {
          return nowMs;
        }
      }
      let expired;
      global.Date = FixedDate;
      try {
        expired = helpers.isExpired(sess, store.options);
      } finally {
        global.Date = RealDate;
      }
      process.stdout.write(JSON.stringify(expired) + '\n');
      return;
    }

    default:
      usage();
  }
}

process.on('uncaughtException', (e) => fail('uncaught: ' + (e.stack || e)));
main(process.argv.slice(2));
