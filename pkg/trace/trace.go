package trace

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Trace is a per-second request-rate series. RPS[i] is the number of
// requests arriving in second i (relative to the trace's start).
type Trace struct {
	// Name describes where the trace came from ("twitter[1300920:1302180]").
	Name string `json:"name"`
	// RPS holds one non-negative rate per second.
	RPS []float64 `json:"rps"`
}

// Len is the trace's length in seconds.
func (t Trace) Len() int { return len(t.RPS) }

// Stats summarises a trace.
type Stats struct {
	Seconds  int     `json:"seconds"`
	Mean     float64 `json:"mean"`
	Max      float64 `json:"max"`
	Min      float64 `json:"min"`
	Requests float64 `json:"requests"`
}

// Stats returns the trace's length, mean, min, max and total requests.
func (t Trace) Stats() Stats {
	s := Stats{Seconds: len(t.RPS)}
	if len(t.RPS) == 0 {
		return s
	}
	s.Min = math.Inf(1)
	for _, v := range t.RPS {
		s.Requests += v
		s.Max = max(s.Max, v)
		s.Min = min(s.Min, v)
	}
	s.Mean = s.Requests / float64(len(t.RPS))
	return s
}

// Window returns seconds [from, to) as a new trace sharing no memory with t.
// to ≤ 0 means the end of the trace.
func (t Trace) Window(from, to int) (Trace, error) {
	if to <= 0 {
		to = len(t.RPS)
	}
	if from < 0 || from >= to || to > len(t.RPS) {
		return Trace{}, fmt.Errorf("trace %q: window [%d, %d) is outside [0, %d)", t.Name, from, to, len(t.RPS))
	}
	out := make([]float64, to-from)
	copy(out, t.RPS[from:to])
	return Trace{Name: fmt.Sprintf("%s[%d:%d]", t.Name, from, to), RPS: out}, nil
}

// Scale multiplies every rate by factor (> 0).
func (t Trace) Scale(factor float64) (Trace, error) {
	if !(factor > 0) || math.IsInf(factor, 0) {
		return Trace{}, fmt.Errorf("trace scale factor must be a positive finite number, got %v", factor)
	}
	out := make([]float64, len(t.RPS))
	for i, v := range t.RPS {
		out[i] = v * factor
	}
	name := t.Name
	if factor != 1 {
		name = fmt.Sprintf("%s×%g", t.Name, factor)
	}
	return Trace{Name: name, RPS: out}, nil
}

// ScaleToPeak scales the trace so its highest second has peak RPS.
func (t Trace) ScaleToPeak(peak float64) (Trace, error) {
	if !(peak > 0) || math.IsInf(peak, 0) {
		return Trace{}, fmt.Errorf("trace peak must be a positive finite RPS, got %v", peak)
	}
	m := t.Stats().Max
	if m <= 0 {
		return Trace{}, fmt.Errorf("trace %q has no requests; cannot scale it to a peak of %g RPS", t.Name, peak)
	}
	return t.Scale(peak / m)
}

// Format names a trace file format.
type Format string

const (
	FormatAuto   Format = ""       // detect
	FormatCounts Format = "counts" // whitespace-separated numbers
	FormatCSV    Format = "csv"    // second,rps
)

// maxInput bounds how much decompressed text Read accepts (a guard against
// decompression bombs; the 22-day Twitter trace is 5.8 MB).
const maxInput = 1 << 30

// Read reads a trace in any supported format, unwrapping bzip2 and tar.
func Read(r io.Reader, name string) (Trace, error) {
	data, err := unwrap(r)
	if err != nil {
		return Trace{}, fmt.Errorf("trace %q: %w", name, err)
	}
	var rps []float64
	if looksCSV(data) {
		rps, err = ParseCSV(data)
	} else {
		rps, err = ParseCounts(data)
	}
	if err != nil {
		return Trace{}, fmt.Errorf("trace %q: %w", name, err)
	}
	return Trace{Name: name, RPS: rps}, nil
}

// unwrap reads everything, decompressing bzip2 and extracting the first
// regular file of a tar archive when present.
func unwrap(r io.Reader) ([]byte, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	head, _ := br.Peek(3)
	var src io.Reader = br
	if bytes.Equal(head, []byte("BZh")) {
		src = bzip2.NewReader(br)
	}
	data, err := io.ReadAll(io.LimitReader(src, maxInput+1))
	if err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	if len(data) > maxInput {
		return nil, fmt.Errorf("input larger than %d bytes", maxInput)
	}
	if isTar(data) {
		tr := tar.NewReader(bytes.NewReader(data))
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				return nil, errors.New("tar archive holds no regular file")
			}
			if err != nil {
				return nil, fmt.Errorf("reading tar archive: %w", err)
			}
			if h.Typeflag == tar.TypeReg {
				inner, err := io.ReadAll(io.LimitReader(tr, maxInput+1))
				if err != nil {
					return nil, fmt.Errorf("reading %s in tar archive: %w", h.Name, err)
				}
				return inner, nil
			}
		}
	}
	return data, nil
}

func isTar(b []byte) bool {
	return len(b) >= 262 && string(b[257:262]) == "ustar"
}

// looksCSV reports whether the first line contains a comma.
func looksCSV(b []byte) bool {
	end := bytes.IndexByte(b, '\n')
	if end < 0 {
		end = len(b)
	}
	return bytes.IndexByte(b[:end], ',') >= 0
}

// ParseCounts parses whitespace-separated non-negative numbers (integers
// on the fast path). Errors name the line and column of the bad token.
func ParseCounts(b []byte) ([]float64, error) {
	out := make([]float64, 0, len(b)/3+1)
	line, lineStart := 1, 0
	i := 0
	for i < len(b) {
		c := b[i]
		if c == '\n' {
			line++
			lineStart = i + 1
			i++
			continue
		}
		if c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' {
			i++
			continue
		}
		start := i
		// Fast path: plain unsigned integer.
		var v uint64
		digits := true
		for i < len(b) && !isSpace(b[i]) {
			d := b[i]
			if d < '0' || d > '9' || v > math.MaxUint64/10-10 {
				digits = false
			} else if digits {
				v = v*10 + uint64(d-'0')
			}
			i++
		}
		if digits {
			out = append(out, float64(v))
			continue
		}
		tok := string(b[start:i])
		f, err := strconv.ParseFloat(tok, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			return nil, fmt.Errorf("line %d, column %d (value #%d): %q is not a non-negative number", line, start-lineStart+1, len(out)+1, truncate(tok))
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, errors.New("no values found (expected whitespace-separated requests per second)")
	}
	return out, nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v'
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// ParseCSV parses "second,rps" rows. A first row whose fields are not
// numbers is a header. Seconds must be consecutive integers.
func ParseCSV(b []byte) ([]float64, error) {
	var out []float64
	first := -1
	lines := strings.Split(string(b), "\n")
	for n, raw := range lines {
		ln := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		if ln == "" || strings.HasPrefix(ln, "#") {
			continue
		}
		f := strings.Split(ln, ",")
		if len(f) < 2 {
			return nil, fmt.Errorf("line %d: want \"second,rps\", got %q", n+1, truncate(ln))
		}
		sec, err1 := strconv.ParseFloat(strings.TrimSpace(f[0]), 64)
		rps, err2 := strconv.ParseFloat(strings.TrimSpace(f[1]), 64)
		if (err1 != nil || err2 != nil) && first < 0 && out == nil {
			first = -2 // header seen
			continue
		}
		if err1 != nil || sec != math.Trunc(sec) || sec < 0 || sec > 1e9 {
			return nil, fmt.Errorf("line %d, column 1: second %q is not a non-negative integer", n+1, truncate(strings.TrimSpace(f[0])))
		}
		if err2 != nil || math.IsNaN(rps) || math.IsInf(rps, 0) || rps < 0 {
			return nil, fmt.Errorf("line %d, column 2: rps %q is not a non-negative number", n+1, truncate(strings.TrimSpace(f[1])))
		}
		s := int(sec)
		if out == nil {
			first = s
		} else if want := first + len(out); s != want {
			return nil, fmt.Errorf("line %d: second %d out of sequence (want %d; seconds must be consecutive)", n+1, s, want)
		}
		out = append(out, rps)
	}
	if len(out) == 0 {
		return nil, errors.New("no rows found (expected CSV \"second,rps\")")
	}
	return out, nil
}

// WriteCSV writes t as "second,rps" with a header.
func WriteCSV(w io.Writer, t Trace) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "second,rps")
	for i, v := range t.RPS {
		bw.WriteString(strconv.Itoa(i))
		bw.WriteByte(',')
		bw.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		bw.WriteByte('\n')
	}
	return bw.Flush()
}
