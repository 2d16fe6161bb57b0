package dispatcher

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/infadapter/infadapter/pkg/oip"
)

var jsonSeeds = []string{
	inferBody, `{}`, `[]`, ` [ 1 , -0.5e+3 , "a\u00e9\n" , true , false , null ] `, `{"a":{"b":[{}]}}`,
	`01`, `-`, `1.`, `.5`, `1e`, `+1`, `"\x"`, `"\u12"`, `"unterminated`, `[1,]`, `{"a" 1}`, `{"a":1,}`,
	`{1:2}`, `tru`, `nul`, `[-1,2.5e3,0e1,0.25E-2,7]`, `[01]`, `[1.]`, `[1e]`, `[1e+]`, `[0.5,-0]`, `[1 ,2]`,
	"[1,\n2]", `[1,]`, `[1,,2]`, `[0x1]`, `[1.5.5]`, `[--1]`, `[1,"a",[2],{"b":3}]`, `[1`, `[1,`, `[1.5`, "\"tab\there\"", `[1 2]`, `{} {}`, ``, ` `, `"\ud800"`, "\"\xff\"", `-0`, `0.0e-0`,
	// number arrays and their edges
	`[0,0,0,0,0,0,0,0,0,0]`, `[0,0,0,0,`, `[1,2,3,4,`, `[0,0,0,0,]`, `[0,0,,0,0,0,0,0,0]`, `[0,0,0,01,0,0,0,0]`,
	`[0,0,0,0.,0,0,0,0]`, `[0,0,0,.5,0,0,0,0]`, `[0,0,0.5.5,0,0,0]`, `[0.5,0.25,10.5,3,0,0,0]`, `[0,0,0,0,1e5,0,0,0]`,
	`[0,0,0,0,-1,0,0,0]`, `[0,0,0,0, 1,0,0,0]`, `[0,12,345,6789,0,0]`, `[0,0,0,0,0,0,0,00]`, `[0,0,0,0,0,0,0,0,]`,
	`[0.14509805,0.29019608,0.43529412,1]`, `[0.1450980x,1]`,
	`[1,-]`, `[-]`, `[1,-0.5e-3,2]`, `[0,-01]`, `[1e5,2E+3,-0,1e-0]`, `[1,2,]`, "[1,\t2]", `[1.5,2.`, `[1,2`, `[1,2,`, `[1e5,]`,
	`[0.5,1e,2]`, `[1,2.5e+]`, `[1,-a]`, `[1,2]]`, `[1,"x",2]`, `[0,0,0,0,0,0,0` + "\xff" + `]`,
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

// TestValidJSONNumberArrays: random arrays of short numbers, mostly
// well-formed, some with one byte inserted or deleted, against
// json.Valid: the fuzzer's random bytes rarely form such arrays.
func TestValidJSONNumberArrays(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tokens := []string{"0", "7", "12", "305", "0.5", "10.25", "0.14509805", "1e5", "-3"}
	const noise = "0123456789,.-e ]["
	buf := make([]byte, 0, 128)
	valid := 0
	for range 200000 {
		buf = append(buf[:0], '[')
		for k := range rng.IntN(14) {
			if k > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, tokens[rng.IntN(len(tokens))]...)
		}
		buf = append(buf, ']')
		if rng.IntN(3) == 0 { // one byte inserted or deleted
			at := 1 + rng.IntN(len(buf)-1)
			if rng.IntN(2) == 0 {
				buf = append(buf[:at], append([]byte{noise[rng.IntN(len(noise))]}, buf[at:]...)...)
			} else {
				buf = append(buf[:at-1], buf[at:]...)
			}
		}
		want := json.Valid(buf)
		if got := validJSON(buf); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid = %v", buf, got, want)
		}
		if want {
			valid++
		}
	}
	if valid < 100000 {
		t.Errorf("only %d of the arrays were well-formed; the generator is off", valid)
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
	// The body of hack/bench-dispatcher.sh: 784 zeros.
	zeros := []byte(`{"inputs":[{"name":"input","shape":[1,1,28,28],"datatype":"FP32","data":[` + strings.Repeat("0,", 783) + `0]}]}`)
	b.Run("zeros", func(b *testing.B) {
		b.SetBytes(int64(len(zeros)))
		for range b.N {
			if !validJSON(zeros) {
				b.Fatal("invalid")
			}
		}
	})
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
