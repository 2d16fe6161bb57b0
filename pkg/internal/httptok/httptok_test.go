package httptok

import "testing"

func TestHelpers(t *testing.T) {
	if got := string(TrimOWS([]byte(" \t a b \t"))); got != "a b" {
		t.Errorf("TrimOWS = %q", got)
	}
	for _, tc := range []struct {
		in   string
		want int64
	}{{"0", 0}, {"1234", 1234}, {"", -1}, {"-1", -1}, {" 1", -1}, {"1x", -1}, {"1234567890123456789", -1}} {
		if got := ParseDigits([]byte(tc.in)); got != tc.want {
			t.Errorf("ParseDigits(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
	if !EqualFold([]byte("Content-Length"), "content-length") || EqualFold([]byte("Content-Lengt"), "content-length") {
		t.Error("EqualFold")
	}
	if !HasToken([]byte("keep-alive, Close"), "close") || HasToken([]byte("closed"), "close") {
		t.Error("HasToken")
	}
	if !IsTokenChar('~') || IsTokenChar(':') || IsTokenChar(' ') {
		t.Error("IsTokenChar")
	}
}
