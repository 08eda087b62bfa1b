package record

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
)

// Session is a stored record decoded: the session's own values, raw, and
// the two objects the layout reserves.
type Session struct {
	Values map[string]json.RawMessage
	Cookie Cookie
	Meta   Meta // zero fields where the record has no "__galleta" (Node wrote it)
}

// Reserved reports whether key is one the layout uses itself, so it is
// never a session value.
func Reserved(key string) bool {
	return key == KeyCookie || key == KeyMeta || key == KeyLastAcc
}

// Decode reads data into s. s.Values is reused (cleared) when not nil.
// s.Cookie starts as def, for a record without a "cookie" object; s.Meta
// starts zero. "__lastAccess" is dropped. An error wraps ErrMalformed and
// leaves s unusable.
func Decode(data []byte, s *Session, def Cookie) error {
	var buf [16]Field
	fields, err := Fields(data, buf[:0])
	if err != nil {
		return err
	}
	if s.Values == nil {
		s.Values = make(map[string]json.RawMessage, len(fields))
	} else {
		clear(s.Values)
	}
	s.Cookie, s.Meta = def, Meta{}
	for _, f := range fields {
		switch f.Key {
		case KeyCookie:
			if s.Cookie, err = DecodeCookie(f.Raw); err != nil {
				return err
			}
		case KeyMeta:
			if s.Meta, err = DecodeMeta(f.Raw); err != nil {
				return err
			}
		case KeyLastAcc:
		default:
			s.Values[f.Key] = json.RawMessage(f.Raw)
		}
	}
	return nil
}

// Encode appends the record for values, c and m: the "cookie" object
// first (express-session's key order), then "__galleta", then the values
// sorted by key, so equal sessions encode to equal bytes. The caller sets
// c.Expires and leaves m.Deadline zero when it follows from the options.
func Encode(b []byte, values map[string]json.RawMessage, c Cookie, m Meta) []byte {
	b = append(b, `{"cookie":`...)
	b = AppendCookie(b, c)
	b = append(b, `,"__galleta":`...)
	b = AppendMeta(b, m)
	if len(values) > 0 {
		var kb [16]string
		keys := kb[:0]
		for k := range values {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = append(b, ',')
			b = AppendKey(b, k)
			b = append(b, values[k]...)
		}
	}
	return append(b, '}')
}

// OpKind is what an Op does.
type OpKind uint8

const (
	OpSet    OpKind = iota // Values[Key] = Raw
	OpDelete               // delete Values[Key]
	OpClear                // delete every value
	OpIncr                 // Values[Key] += Delta, a missing or non-integer value counting as 0
)

// Op is one change a request made to a session's values. A request keeps
// its ops so that they can be applied again on top of what overlapping
// requests stored meanwhile (Merge): that is how no update is lost.
type Op struct {
	Kind  OpKind
	Key   string
	Raw   json.RawMessage
	Delta int64
}

// ErrOverflow is returned (wrapped) when an increment would leave int64's
// range.
var ErrOverflow = errors.New("galleta: integer overflow")

// Apply applies ops to values in order. It stops at an increment that
// would overflow, returning an error wrapping ErrOverflow, with values
// holding the ops before it.
func Apply(values map[string]json.RawMessage, ops []Op) error {
	for _, o := range ops {
		switch o.Kind {
		case OpSet:
			values[o.Key] = o.Raw
		case OpDelete:
			delete(values, o.Key)
		case OpClear:
			clear(values)
		case OpIncr:
			n, _ := Int(values[o.Key]) // a non-integer stored meanwhile is replaced
			sum, ok := Add(n, o.Delta)
			if !ok {
				return &overflowError{key: o.Key, n: n, delta: o.Delta}
			}
			values[o.Key] = strconv.AppendInt(nil, sum, 10)
		}
	}
	return nil
}

type overflowError struct {
	key      string
	n, delta int64
}

func (e *overflowError) Error() string {
	return "key " + strconv.Quote(e.key) + ": " + strconv.FormatInt(e.n, 10) + " + " + strconv.FormatInt(e.delta, 10) + " overflows int64"
}

func (e *overflowError) Unwrap() error { return ErrOverflow }

// Merge returns the values of the stored record data with ops applied on
// top: the session as it is once this request's changes join what other
// requests stored. Reserved keys are dropped.
func Merge(data []byte, ops []Op) (map[string]json.RawMessage, error) {
	var buf [16]Field
	fields, err := Fields(data, buf[:0])
	if err != nil {
		return nil, err
	}
	values := make(map[string]json.RawMessage, len(fields)+len(ops))
	for _, f := range fields {
		if !Reserved(f.Key) {
			values[f.Key] = json.RawMessage(f.Raw)
		}
	}
	if err := Apply(values, ops); err != nil {
		return nil, err
	}
	return values, nil
}

// Int reads a JSON number with an integral value in int64's range (1, 1.0,
// 1e3). ok is false for anything else, including a missing value.
func Int(raw []byte) (int64, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

// Add returns n+delta, and false when the sum leaves int64's range.
func Add(n, delta int64) (int64, bool) {
	sum := n + delta
	if (delta > 0 && sum < n) || (delta < 0 && sum > n) {
		return 0, false
	}
	return sum, true
}
