package redisstore

import "testing"

func TestQuantize(t *testing.T) {
	for _, c := range []struct{ d, want int64 }{
		{0, 1000}, {1, 1000}, {499, 1000}, {-499, 1000}, {-500, 1000}, {500, 2000},
		{1499, 2000}, {-501, 0}, {-1500, 0}, {-1501, -1000},
		{86_400_000 * 365, 86_400_000*365 + 1000},
	} {
		got := quantize(c.d)
		if got != c.want {
			t.Errorf("quantize(%d) = %d, want %d", c.d, got, c.want)
		}
		if got < c.d+500 {
			t.Errorf("quantize(%d) = %d, under d + 500 ms: Redis could delete a key early", c.d, got)
		}
	}
}

func TestMatchPattern(t *testing.T) {
	for prefix, want := range map[string]string{
		"sess:":         `sess:*`,
		"a*b?[c]\\d:":   `a\*b\?\[c\]\\d:*`,
		"{tenant}:s:":   `{tenant}:s:*`,
		"ünïcode:sess:": `ünïcode:sess:*`,
	} {
		s := &Store{prefix: prefix}
		if got := s.matchPattern(); got != want {
			t.Errorf("matchPattern(%q) = %q, want %q", prefix, got, want)
		}
	}
}
