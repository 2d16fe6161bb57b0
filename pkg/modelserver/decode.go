package modelserver

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/infadapter/infadapter/pkg/oip"
)

// v2Req is what the server uses of an OIP v2 inference request with one
// input: the input's values already decoded to float32.
type v2Req struct {
	id      string
	name    string // inputs[0].name
	dtype   string // inputs[0].datatype
	shape   []int64
	in      []float32
	outputs []oip.RequestOutput
	params  map[string]any // request-level parameters
	// inParams are inputs[0].parameters (kept for the binary extension's
	// JSON header, where they carry binary_data_size).
	inParams map[string]any
}

// fastV2 decodes an OIP v2 JSON request with exactly one input in a single
// pass over the body, appending the input's values to dst (a pooled
// buffer). Profiling showed the generic path (encoding/json validating and
// skipping the ~6 kB of numbers, then a second pass converting them with
// strconv) was two thirds of the server's CPU for small models.
//
// It accepts a strict subset of what oip.DecodeInferRequest accepts and
// must agree with it on every body it accepts (FuzzFastV2 checks that): any
// surprise — an unknown or repeated key, escapes in a key, a null where a
// value is expected, a second input, trailing bytes — returns ok = false
// and the caller takes the generic path, which also produces the canonical
// error message.
func fastV2(body []byte, dst []float32) (r v2Req, ok bool) {
	return fastV2Scan(body, dst, false)
}

// fastV2Header decodes the JSON header of a request in the binary tensor
// data extension (binary.go) the same way: one input without "data". It
// must agree with json.Unmarshal into oip.InferRequest on every header it
// accepts (FuzzFastV2Header); anything else returns ok = false and takes
// that generic path. encoding/json took ~10 µs of a binary request's
// server CPU for this ~150-byte header.
func fastV2Header(header []byte) (r v2Req, ok bool) {
	return fastV2Scan(header, nil, true)
}

// fastV2Scan is fastV2, or fastV2Header when header is set.
func fastV2Scan(body []byte, dst []float32, header bool) (r v2Req, ok bool) {
	s := scanner{b: body}
	s.ws()
	seen, ok := s.members(func(key string) (bit uint8, ok bool) {
		switch key {
		case "id":
			r.id, ok = s.str()
			return 1, ok
		case "parameters":
			return 2, s.object(&r.params)
		case "inputs":
			if !s.eat('[') {
				return 0, false
			}
			s.ws()
			if r, ok = s.tensor(r, dst, header); !ok {
				return 0, false
			}
			s.ws()
			return 4, s.eat(']') // not: zero or several inputs
		case "outputs":
			v, ok := s.value()
			return 8, ok && v[0] == '[' && json.Unmarshal(v, &r.outputs) == nil
		}
		return 0, false
	})
	s.ws()
	if !ok || s.i != len(s.b) || seen&4 == 0 {
		return r, false // also {}: no inputs, the generic path says so
	}
	for _, o := range r.outputs {
		if o.Name == "" {
			return r, false
		}
	}
	return r, true
}

// scanner reads JSON from b at i. Its methods return false on anything
// they do not handle; they never panic on any input.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// key reads `"name"` ws `:` ws; names with escapes are not handled.
func (s *scanner) key() (string, bool) {
	if !s.eat('"') {
		return "", false
	}
	j := s.i
	for j < len(s.b) && s.b[j] != '"' {
		if s.b[j] == '\\' || s.b[j] < 0x20 {
			return "", false
		}
		j++
	}
	if j == len(s.b) {
		return "", false
	}
	k := string(s.b[s.i:j])
	s.i = j + 1
	s.ws()
	if !s.eat(':') {
		return "", false
	}
	s.ws()
	return k, true
}

// str reads a JSON string. Plain ASCII/UTF-8 without escapes is taken as
// is; anything else goes through encoding/json for identical semantics.
func (s *scanner) str() (string, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return "", false
	}
	j := s.i + 1
	plain := true
	for j < len(s.b) && s.b[j] != '"' {
		if s.b[j] == '\\' {
			plain = false
			j++ // skip the escaped byte (an escaped quote must not end the string)
		} else if s.b[j] < 0x20 {
			return "", false
		}
		j++
	}
	if j >= len(s.b) {
		return "", false
	}
	raw := s.b[s.i : j+1]
	s.i = j + 1
	if plain && utf8.Valid(raw) {
		return string(raw[1 : len(raw)-1]), true
	}
	var v string
	if json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	return v, true
}

// value returns the extent of the next JSON value (object, array, string
// or literal) without validating it; callers hand it to encoding/json.
func (s *scanner) value() ([]byte, bool) {
	start := s.i
	depth := 0
	for s.i < len(s.b) {
		switch c := s.b[s.i]; c {
		case '"':
			j := s.i + 1
			for j < len(s.b) && s.b[j] != '"' {
				if s.b[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s.b) {
				return nil, false
			}
			s.i = j + 1
		case '{', '[':
			depth++
			s.i++
		case '}', ']':
			if depth == 0 {
				return s.b[start:s.i], s.i > start
			}
			depth--
			s.i++
		case ',':
			if depth == 0 {
				return s.b[start:s.i], s.i > start
			}
			s.i++
		default:
			s.i++
		}
		if depth == 0 && s.i > start && (s.b[start] == '"' || s.b[start] == '{' || s.b[start] == '[') {
			return s.b[start:s.i], true
		}
	}
	return nil, false
}

// object reads a JSON object (not null) into *m as encoding/json does.
// A flat object of plain keys and scalar values (the binary extension's
// parameters) is read here; anything else goes through encoding/json.
func (s *scanner) object(m *map[string]any) bool {
	start := s.i
	if s.flatObject(m) {
		return true
	}
	s.i = start
	v, ok := s.value()
	return ok && v[0] == '{' && json.Unmarshal(v, m) == nil
}

// flatObject reads {"k": scalar, ...} (keys without escapes; values true,
// false, null, a number or a string) into a new map, as encoding/json would
// into map[string]any (numbers as float64, a repeated key's last value
// wins). false: something else (s.i is then undefined).
func (s *scanner) flatObject(m *map[string]any) bool {
	if !s.eat('{') {
		return false
	}
	out := map[string]any{}
	s.ws()
	if s.eat('}') {
		*m = out
		return true
	}
	for {
		k, ok := s.key()
		if !ok || s.i >= len(s.b) || !utf8.ValidString(k) {
			return false // encoding/json would replace invalid UTF-8 in a key
		}
		switch c := s.b[s.i]; {
		case c == '"':
			v, ok := s.str()
			if !ok {
				return false
			}
			out[k] = v
		case c == '-' || c-'0' <= 9:
			f, n, ok := parseNumber(s.b[s.i:])
			if !ok {
				return false
			}
			s.i += n
			out[k] = f
		case bytes.HasPrefix(s.b[s.i:], []byte("true")):
			s.i += 4
			out[k] = true
		case bytes.HasPrefix(s.b[s.i:], []byte("false")):
			s.i += 5
			out[k] = false
		case bytes.HasPrefix(s.b[s.i:], []byte("null")):
			s.i += 4
			out[k] = nil
		default:
			return false
		}
		s.ws()
		if s.eat('}') {
			*m = out
			return true
		}
		if !s.eat(',') {
			return false
		}
		s.ws()
	}
}

// members reads an object ({} included: it fails) whose keys each appear
// at most once: member reads the value of key and returns the key's bit,
// 0 for a key it does not know. It returns the bits of the keys seen.
func (s *scanner) members(member func(key string) (bit uint8, ok bool)) (seen uint8, ok bool) {
	if !s.eat('{') {
		return 0, false
	}
	s.ws()
	for {
		key, ok := s.key()
		if !ok {
			return 0, false
		}
		bit, ok := member(key)
		if !ok || bit == 0 || seen&bit != 0 {
			return 0, false
		}
		seen |= bit
		s.ws()
		if s.eat('}') {
			return seen, true
		}
		if !s.eat(',') {
			return 0, false
		}
		s.ws()
	}
}

// tensor reads one input tensor object; its data values are appended to
// dst. With header set it reads a tensor without "data" (one with data
// fails: the generic path takes it).
func (s *scanner) tensor(r v2Req, dst []float32, header bool) (v2Req, bool) {
	seen, ok := s.members(func(key string) (bit uint8, ok bool) {
		switch key {
		case "name":
			r.name, ok = s.str()
			return 1, ok
		case "shape":
			r.shape, ok = s.ints()
			return 2, ok
		case "datatype":
			r.dtype, ok = s.str()
			return 4, ok
		case "parameters":
			return 8, s.object(&r.inParams)
		case "data":
			if header {
				return 0, false
			}
			r.in, ok = s.numbers(dst)
			return 16, ok
		}
		return 0, false
	})
	if header {
		// The checks of the generic path follow in decodeBinary.
		return r, ok && seen&(1|2|4) == 1|2|4
	}
	if !ok || seen&16 == 0 || r.name == "" || !oip.IsNumeric(r.dtype) {
		return r, false
	}
	n, err := oip.Elements(r.shape)
	if err != nil || int64(len(r.in)) != n {
		return r, false
	}
	return r, true
}

// ints reads a JSON array of integers that fit int64 (what encoding/json
// accepts into []int64: no fraction, no exponent).
func (s *scanner) ints() ([]int64, bool) {
	if !s.eat('[') {
		return nil, false
	}
	out := make([]int64, 0, 4)
	s.ws()
	if s.eat(']') {
		return out, true
	}
	for {
		j := s.i
		if j < len(s.b) && s.b[j] == '-' {
			j++
		}
		for j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9' {
			j++
		}
		tok := s.b[s.i:j]
		if !validNumber(tok) {
			return nil, false
		}
		v, err := strconv.ParseInt(string(tok), 10, 64)
		if err != nil {
			return nil, false
		}
		out = append(out, v)
		s.i = j
		s.ws()
		if s.eat(']') {
			return out, true
		}
		if !s.eat(',') {
			return nil, false
		}
		s.ws()
	}
}

// maxDepth matches oip's bound on nested data arrays.
const maxDepth = 32

// numbers reads a JSON array of numbers nested to any depth ≤ maxDepth
// (every element an array or a number, no nulls), appending the values as
// float32 to dst in row-major order. Values out of float64 range fail, as
// in encoding/json.
func (s *scanner) numbers(dst []float32) ([]float32, bool) {
	if !s.eat('[') {
		return nil, false
	}
	depth := 1
	s.ws()
	if s.eat(']') {
		return dst, true // empty: the element count check decides
	}
	for {
		// An element: an array opening or a number.
		if s.i >= len(s.b) {
			return nil, false
		}
		if s.b[s.i] == '[' {
			if depth++; depth > maxDepth {
				return nil, false
			}
			s.i++
			s.ws()
			if !s.eat(']') {
				continue
			}
			depth--
		} else {
			// A run of plain numbers goes through the leaf loop; it stops
			// before anything it does not take (whitespace, exponents, long
			// mantissas), which parseNumber and the loop below then read.
			var n int
			if dst, n = numberRun(s.b[s.i:], dst); n == 0 {
				f, m, ok := parseNumber(s.b[s.i:])
				if !ok {
					return nil, false
				}
				dst = append(dst, float32(f))
				n = m
			}
			s.i += n
		}
		// After an element: ',' then another, or ']' (possibly several).
		for {
			s.ws()
			if s.eat(',') {
				s.ws()
				break
			}
			if !s.eat(']') {
				return nil, false
			}
			if depth--; depth == 0 {
				return dst, true
			}
		}
	}
}

// pow10 holds the powers of ten float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseNumber reads one JSON number at the start of b and returns its
// float64 value (bit-identical to strconv.ParseFloat's) and length. The
// common case — at most 19 digits, a mantissa below 2^53, a decimal
// exponent within ±22 — is computed exactly as float64(mantissa) */ 10^k,
// both exact, so the one IEEE rounding gives the correctly rounded result
// (Clinger's fast path, which strconv also takes first). Eight digits at a
// time are converted with SWAR arithmetic. Everything else goes to strconv.
func parseNumber(b []byte) (float64, int, bool) {
	i := 0
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	var mant uint64
	nd, exp := 0, 0 // digits accumulated in mant (leading zeros included); decimal exponent
	intStart := i
	for i < len(b) && b[i]-'0' <= 9 {
		if nd < 19 {
			mant = mant*10 + uint64(b[i]-'0')
		}
		nd++
		i++
	}
	if i == intStart || (b[intStart] == '0' && i-intStart > 1) {
		return 0, 0, false // no digits, or a leading zero
	}
	if i < len(b) && b[i] == '.' {
		i++
		fracStart := i
		for i+8 <= len(b) && nd+8 <= 19 {
			v, ok := eightDigits(b[i:])
			if !ok {
				break
			}
			mant = mant*100000000 + v
			nd += 8
			exp -= 8
			i += 8
		}
		for i < len(b) && b[i]-'0' <= 9 {
			if nd < 19 {
				mant = mant*10 + uint64(b[i]-'0')
				exp--
			}
			nd++
			i++
		}
		if i == fracStart {
			return 0, 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		expStart := i
		e := 0
		for i < len(b) && b[i]-'0' <= 9 {
			if e < 10000 {
				e = e*10 + int(b[i]-'0')
			}
			i++
		}
		if i == expStart {
			return 0, 0, false
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	if nd <= 19 && mant < 1<<53 && exp >= -22 && exp <= 22 {
		f := float64(mant)
		if exp < 0 {
			f /= pow10[-exp]
		} else {
			f *= pow10[exp]
		}
		if neg {
			f = -f
		}
		return f, i, true
	}
	f, err := strconv.ParseFloat(string(b[:i]), 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, 0, false
	}
	return f, i, true
}

// numberRun reads the run of numbers at the start of b separated by bare
// commas, as clients print tensors ("0,0.035714287,0.071428575,…"), and
// appends them to dst. It returns how many bytes it consumed: up to the end
// of the last number it took, never a trailing comma, and 0 when it took
// none. It takes only numbers of the form -?(0|[1-9][0-9]{0,14})(.[0-9]+)?
// with at most 19 digits that Clinger's fast path computes exactly (a
// mantissa below 2^53, a decimal exponent ≥ −22), so each value is
// bit-identical to parseNumber's; anything else ends the run and is left
// to parseNumber. Why a second parser: this is a leaf — it calls nothing,
// so the slice, index and mantissa stay in registers — and the per-number
// call, whitespace and comma handling of the general loop was about half of
// the decode time of a 784-number image.
func numberRun(b []byte, dst []float32) ([]float32, int) {
	end, i := 0, 0
	for {
		neg := false
		if i < len(b) && b[i] == '-' {
			neg = true
			i++
		}
		start := i
		var mant uint64
		for i < len(b) && b[i]-'0' <= 9 {
			mant = mant*10 + uint64(b[i]-'0')
			i++
		}
		nd := i - start
		if nd == 0 || nd > 15 || (b[start] == '0' && nd > 1) {
			return dst, end
		}
		exp := 0
		if i < len(b) && b[i] == '.' {
			i++
			frac := i
			if i+8 <= len(b) && nd+8 <= 19 {
				if v, ok := eightDigits(b[i:]); ok {
					mant = mant*100000000 + v
					nd += 8
					i += 8
				}
			}
			for i < len(b) && b[i]-'0' <= 9 {
				if nd >= 19 {
					return dst, end
				}
				mant = mant*10 + uint64(b[i]-'0')
				nd++
				i++
			}
			exp = frac - i
			if exp == 0 || exp < -22 {
				return dst, end
			}
		}
		if i >= len(b) || b[i] == 'e' || b[i] == 'E' || mant >= 1<<53 {
			return dst, end
		}
		f := float64(mant)
		if exp < 0 {
			f /= pow10[-exp]
		}
		if neg {
			f = -f
		}
		dst = append(dst, float32(f))
		end = i
		if b[i] != ',' {
			return dst, end
		}
		i++
	}
}

// eightDigits converts b[:8] if all eight bytes are ASCII digits, eight at
// once (the SWAR method of Lemire, "Faster integer parsing", 2018).
func eightDigits(b []byte) (uint64, bool) {
	v := binary.LittleEndian.Uint64(b)
	if (v&0xF0F0F0F0F0F0F0F0)|(((v+0x0606060606060606)&0xF0F0F0F0F0F0F0F0)>>4) != 0x3333333333333333 {
		return 0, false
	}
	v -= 0x3030303030303030
	v = v*10 + v>>8 // pairs: each 16-bit lane's low byte holds two digits' value
	v = ((v&0x000000FF000000FF)*(100+(1000000<<32)) + ((v>>16)&0x000000FF000000FF)*(1+(10000<<32))) >> 32
	return v, true
}

// validNumber reports whether tok is a JSON integer: -?(0|[1-9][0-9]*).
func validNumber(tok []byte) bool {
	if len(tok) > 0 && tok[0] == '-' {
		tok = tok[1:]
	}
	return len(tok) > 0 && (tok[0] != '0' || len(tok) == 1)
}
