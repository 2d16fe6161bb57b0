package dispatcher

// validJSON reports whether b is one well-formed JSON value (surrounded by
// optional whitespace), accepting exactly what encoding/json.Valid accepts
// (FuzzValidJSON checks the two agree), including its nesting limit of
// 10000. It exists because json.Valid's byte-at-a-time state machine was
// ~45% of the dispatcher's CPU per request on a 784-float OIP v2 body;
// this recursive-descent scanner is about 5× faster (BenchmarkValidJSON:
// ~7 µs for an 8 KB Fashion-MNIST-like body, against ~37 µs for
// json.Valid and ~5.5 µs for a bare loop counting the body's commas on
// the same 2-vCPU VM).
func validJSON(b []byte) bool {
	i := skipWS(b, 0)
	i = scanValue(b, i, 0)
	if i < 0 {
		return false
	}
	return skipWS(b, i) == len(b)
}

// maxJSONDepth is encoding/json's maxNestingDepth.
const maxJSONDepth = 10000

// The scanners take the input and a position and return the position
// after what they scanned, or -1 when it is malformed. Plain functions on
// a local slice and index (not methods updating a struct field) let the
// compiler keep the index in a register and drop most bounds checks:
// 1.8× faster than the first version, which kept the index in a struct.

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func scanValue(b []byte, i, depth int) int {
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; c {
	case '{':
		if depth+1 > maxJSONDepth {
			return -1
		}
		return scanObject(b, i, depth+1)
	case '[':
		if depth+1 > maxJSONDepth {
			return -1
		}
		return scanArray(b, i, depth+1)
	case '"':
		return scanString(b, i)
	case 't':
		return scanLit(b, i, "true")
	case 'f':
		return scanLit(b, i, "false")
	case 'n':
		return scanLit(b, i, "null")
	}
	return scanNum(b, i)
}

func scanObject(b []byte, i, depth int) int {
	i = skipWS(b, i+1) // after '{'
	if i < len(b) && b[i] == '}' {
		return i + 1
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return -1
		}
		if i = scanString(b, i); i < 0 {
			return -1
		}
		i = skipWS(b, i)
		if i >= len(b) || b[i] != ':' {
			return -1
		}
		i = skipWS(b, i+1)
		if i = scanValue(b, i, depth); i < 0 {
			return -1
		}
		var done bool
		if i, done = scanSep(b, i, '}'); done || i < 0 {
			return i
		}
	}
}

// scanSep scans what follows a member or element at b[i]: a comma
// (it returns the position of the next one, whitespace skipped) or the
// closing byte (it returns the position after it and done); -1 for
// anything else.
func scanSep(b []byte, i int, closing byte) (next int, done bool) {
	i = skipWS(b, i)
	if i >= len(b) {
		return -1, false
	}
	switch b[i] {
	case ',':
		return skipWS(b, i+1), false
	case closing:
		return i + 1, true
	}
	return -1, false
}

func scanArray(b []byte, i, depth int) int {
	i = skipWS(b, i+1) // after '['
	if i < len(b) && b[i] == ']' {
		return i + 1
	}
	for i < len(b) {
		// Tensors are long arrays of numbers: runs of "number,number,"
		// are scanned by scanNumbers, a leaf loop that keeps everything in
		// registers (with the calls below in the same loop the compiler
		// reloaded the slice from the stack for every element).
		if c := b[i]; c == '-' || '0' <= c && c <= '9' {
			i = scanNumbers(b, i)
		} else {
			i = scanValue(b, i, depth)
		}
		if i < 0 {
			return -1
		}
		var done bool
		if i, done = scanSep(b, i, ']'); done || i < 0 {
			return i
		}
	}
	return -1
}

// scanNumbers scans the number starting at b[i] (a digit or '-') and,
// while a comma follows directly, the numbers after it; it returns the
// position after the last number (at the comma when the comma is not
// directly followed by a number: whitespace, or a malformed "1,]", which
// scanArray then judges), or -1 when a number is malformed. It calls
// nothing, so its loop runs in registers, and it tests the common case
// first: after a number's integer part, a comma.
func scanNumbers(b []byte, i int) int {
	for i < len(b) {
		c := b[i]
		neg := c == '-'
		if neg {
			i++
			if i >= len(b) {
				return -1
			}
			c = b[i]
		}
		if c == '0' {
			i++
		} else if c-'1' < 9 {
			i++
			for i < len(b) && b[i]-'0' < 10 {
				i++
			}
		} else {
			if neg {
				return -1
			}
			return i - 1 // after a comma: not a number (the entry is one)
		}
		if i >= len(b) {
			return i
		}
		c = b[i]
		if c == ',' {
			i++
			continue
		}
		if c == '.' {
			i++
			start := i
			for i < len(b) && b[i]-'0' < 10 {
				i++
			}
			if i == start {
				return -1
			}
			if i >= len(b) {
				return i
			}
			c = b[i]
			if c == ',' {
				i++
				continue
			}
		}
		if c == 'e' || c == 'E' {
			i++
			if i < len(b) && (b[i] == '+' || b[i] == '-') {
				i++
			}
			start := i
			for i < len(b) && b[i]-'0' < 10 {
				i++
			}
			if i == start {
				return -1
			}
			if i < len(b) && b[i] == ',' {
				i++
				continue
			}
		}
		return i
	}
	return i - 1 // a comma at the very end
}

// scanString scans a string starting at its opening quote b[i].
func scanString(b []byte, i int) int {
	i++
	for i < len(b) {
		c := b[i]
		if plainStringByte[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			return i + 1
		case c == '\\':
			i++
			if i >= len(b) {
				return -1
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+4 >= len(b) {
					return -1
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						return -1
					}
				}
				i += 5
			default:
				return -1
			}
		default: // a control character
			return -1
		}
	}
	return -1
}

// plainStringByte: bytes that stand for themselves inside a string (not
// '"', '\\' or a control character; any byte >= 0x80, as json.Valid does
// not check UTF-8).
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func scanLit(b []byte, i int, w string) int {
	if len(b)-i < len(w) || string(b[i:i+len(w)]) != w {
		return -1
	}
	return i + len(w)
}

// scanNum scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNum(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '0':
		i++
	case '1' <= c && c <= '9':
		i++
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == start {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		return scanExp(b, i)
	}
	return i
}

// scanExp scans [eE][+-]?[0-9]+ at b[i] (an 'e' or 'E').
func scanExp(b []byte, i int) int {
	i++
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		i++
	}
	start := i
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	if i == start {
		return -1
	}
	return i
}
