package modelserver

import (
	"encoding/json"
	"testing"

	"github.com/infadapter/infadapter/pkg/oip"
)

// FuzzParseFloats checks the fast path against the oip package: whenever
// both accept a data array they must agree value for value.
func FuzzParseFloats(f *testing.F) {
	for _, s := range []string{`[1,2,3]`, `[[0.5, -1e-3], [2E+2, 0]]`, `[]`, `[1, "x"]`, `[true]`, `[[[1]]]`, `[-0.0, 3.4e38]`, `[1e400]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		got, err := parseFloats(data, nil)
		tt := oip.Tensor{Data: data}
		want, werr := tt.Float32s()
		if err != nil || werr != nil {
			return // the server falls back to oip on any fast-path error
		}
		if len(got) != len(want) {
			t.Fatalf("%s: fast %v, oip %v", data, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: value %d: fast %g, oip %g", data, i, got[i], want[i])
			}
		}
	})
}
