package pgstore

import "strings"

// statements are the store's SQL, built once at New with the quoted table
// name. Every "now" is a parameter (the store's clock), every expiry a
// timestamptz parameter that PostgreSQL converts to and from the column's
// local time with the connection's TimeZone, as connect-pg-simple's
// to_timestamp() does. Text comparisons use COLLATE "C": byte equality.
type statements struct {
	get       string // $1 sid, $2 now → sess, expire
	getMany   string // $1 sids, $2 now → sid, sess, expire: get's rows at once
	set       string // $1 sid, $2 sess, $3 expire
	setMany   string // $1 sids, $2 sesses (json), $3 expires: set's rows at once
	del       string // $1 sid
	delLive   string // $1 sid, $2 now
	touch     string // $1 sid, $2 expire, $3 now
	casUpdate string // $1 sid, $2 sess, $3 expire, $4 seen text, $5 now
	casMany   string // $1 sids, $2 sesses (json), $3 expires, $4 seen texts, $5 now → sid of each row written
	casDelete string // $1 sid, $2 seen text, $3 now
	insertNew string // $1 sid, $2 sess, $3 expire, $4 now: insert, or replace an expired row
	lockRead  string // $1 sid, $2 now → sess, expire (FOR UPDATE)
	update    string // $1 sid, $2 sess, $3 expire
	list      string // $1 after sid, $2 now, $3 rows, $4 bytes → sid, sess, expire
	count     string // $1 after sid, $2 now, $3 rows → live, rows, last sid
	reap      string // $1 now, $2 rows
	ping      string // $1 the quoted table name
}

// Page sizes of List and Count.
const (
	listRows  = 100
	listBytes = 4 << 20
	countRows = 10000
)

func buildStatements(t string) statements {
	r := strings.NewReplacer("{T}", t)
	q := func(s string) string { return r.Replace(s) }
	return statements{
		get:     q(`SELECT sess, expire::timestamptz FROM {T} WHERE sid = $1 AND expire > $2::timestamptz`),
		getMany: q(`SELECT sid, sess, expire::timestamptz FROM {T} WHERE sid = ANY($1::text[]) AND expire > $2::timestamptz`),
		set: q(`INSERT INTO {T} (sid, sess, expire) VALUES ($1, $2, $3::timestamptz) ` +
			`ON CONFLICT (sid) DO UPDATE SET sess = EXCLUDED.sess, expire = EXCLUDED.expire`),
		setMany: q(`INSERT INTO {T} (sid, sess, expire) SELECT * FROM unnest($1::text[], $2::json[], $3::timestamptz[]) ` +
			`ON CONFLICT (sid) DO UPDATE SET sess = EXCLUDED.sess, expire = EXCLUDED.expire`),
		del:     q(`DELETE FROM {T} WHERE sid = $1`),
		delLive: q(`DELETE FROM {T} WHERE sid = $1 AND expire > $2::timestamptz`),
		touch:   q(`UPDATE {T} SET expire = $2::timestamptz WHERE sid = $1 AND expire > $3::timestamptz`),
		casUpdate: q(`UPDATE {T} SET sess = $2, expire = $3::timestamptz ` +
			`WHERE sid = $1 AND sess::text COLLATE "C" = $4::text AND expire > $5::timestamptz`),
		// Rows another transaction holds locked are skipped, not waited
		// for: one of them would hold up every session of the batch. A
		// skipped row is not written, so its session takes the locked
		// path alone (the reap statement takes its rows the same way).
		casMany: q(`UPDATE {T} AS t SET sess = u.sess, expire = u.expire ` +
			`FROM unnest($1::text[], $2::json[], $3::timestamptz[], $4::text[]) AS u(sid, sess, expire, seen) ` +
			`WHERE t.ctid = ANY(ARRAY(SELECT ctid FROM {T} WHERE sid = ANY($1::text[]) FOR UPDATE SKIP LOCKED)) ` +
			`AND t.sid = u.sid AND t.sess::text COLLATE "C" = u.seen COLLATE "C" AND t.expire > $5::timestamptz RETURNING t.sid`),
		casDelete: q(`DELETE FROM {T} WHERE sid = $1 AND sess::text COLLATE "C" = $2::text AND expire > $3::timestamptz`),
		insertNew: q(`INSERT INTO {T} AS s (sid, sess, expire) VALUES ($1, $2, $3::timestamptz) ` +
			`ON CONFLICT (sid) DO UPDATE SET sess = EXCLUDED.sess, expire = EXCLUDED.expire WHERE s.expire <= $4::timestamptz`),
		lockRead: q(`SELECT sess, expire::timestamptz FROM {T} WHERE sid = $1 AND expire > $2::timestamptz FOR UPDATE`),
		update:   q(`UPDATE {T} SET sess = $2, expire = $3::timestamptz WHERE sid = $1`),
		// A page is at most $3 rows and, past its first row, $4 bytes of
		// sess (octet_length of a json value reads its size without
		// decompressing it).
		list: q(`SELECT sid, sess, expire FROM (` +
			`SELECT sid, sess, expire::timestamptz AS expire, sum(octet_length(sess::text)) OVER (ORDER BY sid ROWS UNBOUNDED PRECEDING) - octet_length(sess::text) AS before ` +
			`FROM {T} WHERE sid > $1::text AND expire > $2::timestamptz ORDER BY sid LIMIT $3) p ` +
			`WHERE before < $4 ORDER BY sid`),
		count: q(`SELECT count(*) FILTER (WHERE expire > $2::timestamptz), count(*), coalesce(max(sid), '') FROM (` +
			`SELECT sid, expire FROM {T} WHERE sid > $1::text ORDER BY sid LIMIT $3) p`),
		reap: q(`DELETE FROM {T} WHERE ctid = ANY(ARRAY(` +
			`SELECT ctid FROM {T} WHERE expire <= $1::timestamptz LIMIT $2 FOR UPDATE SKIP LOCKED)) ` +
			`AND expire <= $1::timestamptz`),
		// Proves a connection, the table, the privileges the store needs
		// and a server that accepts writes (a DELETE of no row still fails
		// on a read-only server or standby), without writing anything.
		ping: q(`WITH d AS (DELETE FROM {T} WHERE false RETURNING 1) ` +
			`SELECT has_table_privilege($1::text, 'SELECT, INSERT, UPDATE, DELETE'), (SELECT count(*) FROM d)`),
	}
}
