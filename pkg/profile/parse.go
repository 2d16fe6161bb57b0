package profile

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FieldError is one problem in a profile: where (file, line, field path)
// and what. Line is 0 when the profile did not come from a file.
type FieldError struct {
	File string
	Line int
	Path string // e.g. "variants[2].capacity[1].rps"
	Msg  string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(":")
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// positions maps a field path to the line it was read from.
type positions map[string]int

// Parse decodes and validates a profile written in YAML (the format is in
// docs/profiles.md). file names the source in errors
// ("profile.yaml:14: variants[2].capacity[1].rps: ..."). Every problem is
// reported (errors.Join of *FieldError): unknown or duplicate fields, wrong
// types, and everything Validate checks.
func Parse(data []byte, file string) (Profile, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Profile{}, &FieldError{File: file, Line: yamlErrLine(err), Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	d := &decoder{file: file, pos: positions{}}
	var p Profile
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return p, &FieldError{File: file, Msg: "empty profile"}
	}
	d.profile(doc.Content[0], &p)
	errs := d.errs
	errs = append(errs, p.validate(file, d.pos)...)
	// Report in file order.
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].(*FieldError).Line < errs[j].(*FieldError).Line })
	return p, errors.Join(errs...)
}

// yamlErrLine pulls "line N" out of a yaml.v3 syntax error.
func yamlErrLine(err error) int {
	msg := err.Error()
	i := strings.Index(msg, "line ")
	if i < 0 {
		return 0
	}
	j := i + len("line ")
	k := j
	for k < len(msg) && msg[k] >= '0' && msg[k] <= '9' {
		k++
	}
	n, _ := strconv.Atoi(msg[j:k])
	return n
}

type decoder struct {
	file string
	pos  positions
	errs []error
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{File: d.file, Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// fields walks a mapping node, rejecting unknown and duplicate keys and
// calling set for the known ones.
func (d *decoder) fields(n *yaml.Node, path string, known []string, set func(key string, v *yaml.Node, p string)) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "must be a mapping, got %s", kindName(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := k.Value
		if path != "" {
			p = path + "." + k.Value
		}
		switch {
		case !contains(known, k.Value):
			d.fail(k, p, "unknown field (known: %s)", strings.Join(known, ", "))
		case seen[k.Value]:
			d.fail(k, p, "duplicate field")
		default:
			seen[k.Value] = true
			d.pos[p] = k.Line
			set(k.Value, v, p)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

func (d *decoder) str(n *yaml.Node, path string, out *string) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.fail(n, path, "must be a string, got %s", kindName(n))
		return
	}
	*out = n.Value
}

func (d *decoder) num(n *yaml.Node, path string, out *float64) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		d.fail(n, path, "must be a number, got %s", kindName(n))
		return
	}
	x, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		d.fail(n, path, "must be a finite number, got %q", n.Value)
		return
	}
	*out = x
}

func (d *decoder) integer(n *yaml.Node, path string, out *int) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		d.fail(n, path, "must be a whole number, got %s", kindName(n))
		return
	}
	x, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 32)
	if err != nil {
		d.fail(n, path, "must be a whole number within ±2^31, got %q", n.Value)
		return
	}
	*out = int(x)
}

func (d *decoder) seq(n *yaml.Node, path string, each func(i int, e *yaml.Node, p string)) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "must be a list, got %s", kindName(n))
		return
	}
	for i, e := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.pos[p] = e.Line
		each(i, e, p)
	}
}

func (d *decoder) profile(n *yaml.Node, p *Profile) {
	d.fields(n, "", []string{"name", "sloMillis", "capacityRule", "capacityCoefficient", "fitCores", "source", "variants"},
		func(key string, v *yaml.Node, path string) {
			switch key {
			case "name":
				d.str(v, path, &p.Name)
			case "sloMillis":
				d.num(v, path, &p.SLOMillis)
			case "capacityRule":
				var s string
				d.str(v, path, &s)
				p.Rule = CapacityRule(s)
			case "capacityCoefficient":
				d.num(v, path, &p.Coefficient)
			case "fitCores":
				p.FitCores = []int{}
				d.seq(v, path, func(_ int, e *yaml.Node, ep string) {
					var c int
					d.integer(e, ep, &c)
					p.FitCores = append(p.FitCores, c)
				})
			case "source":
				d.str(v, path, &p.Source)
			case "variants":
				p.Variants = []Variant{}
				d.seq(v, path, func(_ int, e *yaml.Node, ep string) {
					var vr Variant
					d.variant(e, ep, &vr)
					p.Variants = append(p.Variants, vr)
				})
			}
		})
}

func (d *decoder) variant(n *yaml.Node, path string, v *Variant) {
	d.fields(n, path, []string{"name", "accuracy", "accuracySource", "loadTimeSeconds", "memory", "capacity"},
		func(key string, x *yaml.Node, p string) {
			switch key {
			case "name":
				d.str(x, p, &v.Name)
			case "accuracy":
				d.num(x, p, &v.Accuracy)
			case "accuracySource":
				d.str(x, p, &v.AccuracySource)
			case "loadTimeSeconds":
				d.num(x, p, &v.LoadTimeSeconds)
			case "memory":
				d.str(x, p, &v.Memory)
			case "capacity":
				v.Capacity = []Point{}
				d.seq(x, p, func(_ int, e *yaml.Node, ep string) {
					var pt Point
					d.fields(e, ep, []string{"cores", "rps"}, func(key string, y *yaml.Node, pp string) {
						if key == "cores" {
							d.integer(y, pp, &pt.Cores)
						} else {
							d.num(y, pp, &pt.RPS)
						}
					})
					v.Capacity = append(v.Capacity, pt)
				})
			}
		})
}
