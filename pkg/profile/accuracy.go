package profile

import (
	"errors"
	"fmt"
	"regexp"
)

// Accuracy sources (Variant.AccuracySource).
const (
	// SourceMeasured: the project ran the variant over a labelled test set.
	SourceMeasured = "measured"
	// SourcePublished: the figure is the model authors' (e.g. torchvision's
	// ImageNet top-1 for the random-weight ResNet family); nothing here
	// measured it, and wherever it is shown it must say so.
	SourcePublished = "published"
)

// PublishedLabel is the wording every output uses next to a published
// accuracy.
const PublishedLabel = "published, not measured"

// AccuracyLabel says where v's accuracy comes from, for display next to
// the figure: "published, not measured", "measured", or "" when the
// profile does not say.
func (v Variant) AccuracyLabel() string {
	switch v.AccuracySource {
	case SourcePublished:
		return PublishedLabel
	case SourceMeasured:
		return SourceMeasured
	}
	return ""
}

// FormatAccuracy renders v's accuracy as a percentage with its source,
// e.g. "76.13 % (published, not measured)" or "91.56 % (measured)".
func (v Variant) FormatAccuracy() string {
	s := fmt.Sprintf("%.2f %%", 100*v.Accuracy)
	if l := v.AccuracyLabel(); l != "" {
		s += " (" + l + ")"
	}
	return s
}

// AnyPublished reports whether some variant's accuracy is published
// rather than measured.
func (p Profile) AnyPublished() bool {
	for _, v := range p.Variants {
		if v.AccuracySource == SourcePublished {
			return true
		}
	}
	return false
}

// AllPublished reports whether p has variants and every one's accuracy is
// published: no labelled data set exists for the family, so served
// accuracy cannot be measured either.
func (p Profile) AllPublished() bool {
	for _, v := range p.Variants {
		if v.AccuracySource != SourcePublished {
			return false
		}
	}
	return len(p.Variants) > 0
}

// capacityPath matches the field path of a variant's capacity list.
var capacityPath = regexp.MustCompile(`^variants\[\d+\]\.capacity$`)

// ParseFamily parses a model family's metadata file (DIR/profile.yaml of
// `infadapter profile --family DIR`): a profile whose variants may not
// have been measured yet, so a variant may lack capacity points (a freshly
// exported family lists only names, accuracies and their source). Every
// other rule of Parse applies, and points that are present are checked.
func ParseFamily(data []byte, file string) (Profile, error) {
	p, err := Parse(data, file)
	if err == nil {
		return p, nil
	}
	var keep []error
	for _, e := range flatten(err) {
		var fe *FieldError
		if errors.As(e, &fe) && capacityPath.MatchString(fe.Path) {
			continue // missing or empty capacity: not measured yet
		}
		keep = append(keep, e)
	}
	return p, errors.Join(keep...)
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
