package modelserver

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/infadapter/infadapter/pkg/oip"
)

// fastV2Seeds are bodies the fast decoder should take or refuse; the fuzz
// targets start from them.
var fastV2Seeds = []string{
	v2Body([]int64{1, 1, 28, 28}, image(1)),
	`{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[0.5, -1e-3], [2E+2, 0]]}]}`,
	` { "id" : "a\"b\u00e9" , "parameters":{"binary_data_output":false}, "inputs" : [ { "data" : [ 1 , 2 ] , "shape":[2], "datatype":"INT32", "name":"x", "parameters":{} } ], "outputs":[{"name":"y"}] } `,
	`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[[[[1]]]]}]}`,
	`{"inputs":[{"name":"x","shape":[0],"datatype":"FP32","data":[]}]}`,
	`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1e400]}]}`,
	`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1e-400]}]}`,
	`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[-0]}]}`,
	`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[0.1234567890123456789]}]}`,
	`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[null]}]}`,
	`{"inputs":[{"name":"x","shape":[1.0],"datatype":"FP32","data":[1]}]}`,
	`{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","data":["a"]}]}`,
	`{"ID":"x","inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`,
	`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]} ]`,
	`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"inputs":[]}`,
	`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]},{"name":"y","shape":[1],"datatype":"FP32","data":[1]}]}`,
	`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":` + strings.Repeat("[", 32) + "1" + strings.Repeat("]", 32) + `}]}`,
	`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":` + strings.Repeat("[", 33) + "1" + strings.Repeat("]", 33) + `}]}`,
	`{"id":"\ud800","inputs":[{"name":"x\u0000","shape":[1],"datatype":"FP32","data":[01]}]}`,
}

// FuzzFastV2 checks the single-pass decoder against pkg/oip: whenever it
// accepts a body, oip must accept it too and every field must agree (the
// values bit for bit); whenever it refuses, the server takes oip's path.
func FuzzFastV2(f *testing.F) {
	for _, s := range fastV2Seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := fastV2(body, nil)
		if !ok {
			return
		}
		want, err := oip.DecodeInferRequest(body)
		if err != nil {
			t.Fatalf("%s: fast path accepted, oip: %v", body, err)
		}
		in := &want.Inputs[0]
		vals, err := in.Float32s()
		if len(want.Inputs) != 1 || err != nil {
			t.Fatalf("%s: fast path accepted, oip: %d inputs, %v", body, len(want.Inputs), err)
		}
		if got.id != want.ID || got.name != in.Name || got.dtype != in.Datatype || !reflect.DeepEqual(got.shape, in.Shape) ||
			!reflect.DeepEqual(got.outputs, want.Outputs) || !reflect.DeepEqual(got.params, want.Parameters) {
			t.Fatalf("%s: fast %+v, oip %+v", body, got, want)
		}
		if len(got.in) != len(vals) {
			t.Fatalf("%s: fast %d values, oip %d", body, len(got.in), len(vals))
		}
		for i := range vals {
			if math.Float32bits(got.in[i]) != math.Float32bits(vals[i]) {
				t.Fatalf("%s: value %d: fast %g, oip %g", body, i, got.in[i], vals[i])
			}
		}
	})
}

// FuzzParseNumber checks parseNumber against encoding/json + strconv: on a
// valid JSON number both give the same bits; on anything else parseNumber
// must not consume the whole input as a number.
func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"0", "-0", "1", "0.5", "-1e-3", "2E+2", "3.4e38", "1e400", "1e-400", "0.1234567890123456789",
		"123456789012345678901234567890", "9007199254740993", "12345678.12345678", "0.00000000001", "1.2345678e-7", "99999999.999999999", "1e22", "1e23", "01", "1.", ".5", "-", "1e", "4.9e-324", "0.035714287"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, n, ok := parseNumber([]byte(s))
		var want float64
		werr := json.Unmarshal([]byte(s), &want)
		isNum := werr == nil && len(s) > 0 && (s[0] == '-' || s[0] >= '0' && s[0] <= '9')
		if isNum && !strings.ContainsAny(s, " \t\r\n") {
			if !ok || n != len(s) || math.Float64bits(v) != math.Float64bits(want) {
				t.Fatalf("%q: parseNumber = %v, %d, %v; encoding/json %v", s, v, n, ok, want)
			}
			return
		}
		if ok && n == len(s) {
			t.Fatalf("%q: parseNumber accepted %v, encoding/json: %v", s, v, werr)
		}
	})
}

func TestFastV2TakesCommonBodies(t *testing.T) {
	img := image(1)
	pretty, _ := json.MarshalIndent(oip.InferRequest{ID: "r1", Inputs: []oip.Tensor{oip.NewFP32("input", []int64{1, 784}, img)}}, "", "  ")
	for _, body := range []string{v2Body([]int64{1, 1, 28, 28}, img), string(pretty), fastV2Seeds[1], fastV2Seeds[2], fastV2Seeds[3]} {
		if _, ok := fastV2([]byte(body), nil); !ok {
			t.Errorf("fast path refused a common body: %.200s", body)
		}
	}
	r, _ := fastV2([]byte(fastV2Seeds[2]), nil)
	if r.id != `a"bé` || r.dtype != "INT32" || len(r.in) != 2 || r.in[1] != 2 || len(r.outputs) != 1 || r.params["binary_data_output"] != false {
		t.Errorf("decoded %+v", r)
	}
	for _, i := range []int{5, 9, 10, 11, 12, 13, 14, 15, 17, 18} {
		if _, ok := fastV2([]byte(fastV2Seeds[i]), nil); ok {
			t.Errorf("fast path accepted %.200s", fastV2Seeds[i])
		}
	}
}

// BenchmarkDecodeV2 is the JSON decode of one 784-value request (the
// server's biggest non-ORT cost for small models).
func BenchmarkDecodeV2(b *testing.B) {
	body := []byte(v2Body([]int64{1, 1, 28, 28}, image(1)))
	dst := make([]float32, 0, 784)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, ok := fastV2(body, dst[:0]); !ok {
			b.Fatal("fast path refused")
		}
	}
}

// TestParseNumberAgreesWithStrconv runs parseNumber over numbers as clients
// print them (float32 shortest, float64 shortest, fixed and exponent
// forms) and compares bits with strconv.ParseFloat.
func TestParseNumberAgreesWithStrconv(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		x := math.Float64frombits(rng.Uint64())
		if i%2 == 0 {
			x = float64(float32(rng.Float64() * math.Pow(10, float64(rng.IntN(12)-6))))
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		for _, s := range []string{
			strconv.FormatFloat(x, 'g', -1, 32), strconv.FormatFloat(x, 'g', -1, 64),
			strconv.FormatFloat(x, 'f', rng.IntN(20), 64), strconv.FormatFloat(x, 'e', rng.IntN(20), 64),
		} {
			want, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsInf(want, 0) { // formatted at 32 bits: "+Inf"
				continue
			}
			got, n, ok := parseNumber([]byte(s + ","))
			if !ok || n != len(s) || math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("%q: parseNumber = %v, %d, %v; strconv %v", s, got, n, ok, want)
			}
		}
	}
}

// FuzzFastV2Header checks the binary extension's fast header decoder
// against encoding/json (what decodeBinary falls back to): whenever it
// accepts a header, json.Unmarshal into oip.InferRequest must accept it
// too and read the same fields.
func FuzzFastV2Header(f *testing.F) {
	for _, s := range []string{
		`{"id":"r1","inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","parameters":{"binary_data_size":3136}}],"parameters":{"binary_data_output":true}}`,
		` { "inputs" : [ { "parameters" : { "binary_data_size" : 4 } , "datatype" : "FP32" , "shape" : [ 1 ] , "name" : "x" } ] , "outputs" : [ { "name" : "y" , "parameters" : { "binary_data" : true } } ] } `,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4},"data":[1]}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":null}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}],"Inputs":[]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","parameters":{"binary_data_size":4}}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":"4"}}],"id":"\u00e9"}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"a":-0,"b":1.5e3,"c":null,"d":false,"e":"s\"t","a":01,"\xff":1}}]}`,
		`{"parameters":{"binary_data_output":true,"x":{"y":1},"z":[1]},"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, header []byte) {
		got, ok := fastV2Header(header)
		if !ok {
			return
		}
		var want oip.InferRequest
		if err := json.Unmarshal(header, &want); err != nil {
			t.Fatalf("%s: fast path accepted, encoding/json: %v", header, err)
		}
		if len(want.Inputs) != 1 {
			t.Fatalf("%s: fast path accepted, encoding/json: %d inputs", header, len(want.Inputs))
		}
		in := &want.Inputs[0]
		if got.id != want.ID || got.name != in.Name || got.dtype != in.Datatype || !reflect.DeepEqual(got.shape, in.Shape) ||
			!reflect.DeepEqual(got.outputs, want.Outputs) || !reflect.DeepEqual(got.params, want.Parameters) ||
			!reflect.DeepEqual(got.inParams, in.Parameters) || len(in.Data) != 0 {
			t.Fatalf("%s: fast %+v, encoding/json %+v", header, got, want)
		}
	})
}

// TestNumberRunAgreesWithParseNumber decodes arrays of numbers in every
// form a client prints (shortest float32/float64, fixed, exponent, negative,
// long mantissas, whitespace after some commas) and checks each value bit
// for bit against parseNumber alone, so the leaf loop and the general loop
// it hands over to agree wherever one stops and the other goes on.
func TestNumberRunAgreesWithParseNumber(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 2000; trial++ {
		var parts []string
		var want []float32
		for k := rng.IntN(40) + 1; k > 0; k-- {
			x := float64(float32(rng.Float64() * math.Pow(10, float64(rng.IntN(30)-15))))
			if rng.IntN(4) == 0 {
				x = -x
			}
			var s string
			switch rng.IntN(6) {
			case 0:
				s = strconv.FormatFloat(x, 'g', -1, 64)
			case 1:
				s = strconv.FormatFloat(x, 'f', rng.IntN(25), 64)
			case 2:
				s = strconv.FormatFloat(x, 'e', rng.IntN(10), 64)
			case 3:
				s = strconv.Itoa(rng.IntN(1 << 20))
			default:
				s = strconv.FormatFloat(x, 'g', -1, 32)
			}
			f, n, ok := parseNumber([]byte(s + ","))
			if !ok || n != len(s) {
				t.Fatalf("parseNumber(%q) = %v, %d, %v", s, f, n, ok)
			}
			want = append(want, float32(f))
			if rng.IntN(8) == 0 {
				s = " " + s
			}
			parts = append(parts, s)
		}
		body := "[" + strings.Join(parts, ",") + "]"
		s := scanner{b: []byte(body)}
		got, ok := s.numbers(nil)
		if !ok || len(got) != len(want) {
			t.Fatalf("numbers(%s) = %v, %v; want %v", body, got, ok, want)
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("numbers(%s)[%d] = %v, want %v (%s)", body, i, got[i], want[i], parts[i])
			}
		}
	}
	// Malformed runs are refused, wherever the leaf loop hands over.
	for _, body := range []string{"[1,]", "[1.]", "[01]", "[-]", "[1,,2]", "[1.5e]", "[.5]", "[1 2]", "[1,2"} {
		s := scanner{b: []byte(body)}
		if got, ok := s.numbers(nil); ok {
			t.Errorf("numbers(%s) = %v, accepted", body, got)
		}
	}
}
