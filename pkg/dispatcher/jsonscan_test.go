package dispatcher

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/infadapter/infadapter/pkg/oip"
)

var jsonSeeds = []string{
	inferBody, `{}`, `[]`, ` [ 1 , -0.5e+3 , "a\u00e9\n" , true , false , null ] `, `{"a":{"b":[{}]}}`,
	`01`, `-`, `1.`, `.5`, `1e`, `+1`, `"\x"`, `"\u12"`, `"unterminated`, `[1,]`, `{"a" 1}`, `{"a":1,}`,
	`{1:2}`, `tru`, `nul`, `[-1,2.5e3,0e1,0.25E-2,7]`, `[01]`, `[1.]`, `[1e]`, `[1e+]`, `[0.5,-0]`, `[1 ,2]`,
	"[1,\n2]", `[1,]`, `[1,,2]`, `[0x1]`, `[1.5.5]`, `[--1]`, `[1,"a",[2],{"b":3}]`, `[1`, `[1,`, `[1.5`, "\"tab\there\"", `[1 2]`, `{} {}`, ``, ` `, `"\ud800"`, "\"\xff\"", `-0`, `0.0e-0`,
	strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth),
	strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1),
}

func TestValidJSONMatchesStdlib(t *testing.T) {
	for _, s := range jsonSeeds {
		if got, want := validJSON([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("validJSON(%.40q) = %v, json.Valid = %v", s, got, want)
		}
	}
}

// FuzzValidJSON: the fast validator accepts exactly what json.Valid does.
func FuzzValidJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid = %v", b, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	body := []byte(`{"inputs":[` + string(mustJSON(oip.NewFP32("input", []int64{1, 1, 28, 28}, fmnistLike()))) + `]}`)
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for range b.N {
			if !validJSON(body) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for range b.N {
			if !json.Valid(body) {
				b.Fatal("invalid")
			}
		}
	})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// fmnistLike is a 784-pixel image with values like pixel/255.
func fmnistLike() []float32 {
	v := make([]float32, 784)
	for i := range v {
		v[i] = float32((i*37)%256) / 255
	}
	return v
}
