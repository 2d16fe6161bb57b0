package fashionmnist

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
)

func idx3(n int) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.BigEndian, [4]uint32{magicImages, uint32(n), Rows, Cols})
	for i := 0; i < n*Pixels; i++ {
		b.WriteByte(byte(i))
	}
	return b.Bytes()
}

func TestReadImagesAndLabels(t *testing.T) {
	imgs, err := ReadImages(bytes.NewReader(idx3(3)), 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 || len(imgs[1]) != Pixels || imgs[1][0] != byte(Pixels%256) {
		t.Fatalf("got %d images, first pixel of #1 = %d", len(imgs), imgs[1][0])
	}
	var b bytes.Buffer
	_ = binary.Write(&b, binary.BigEndian, [2]uint32{magicLabels, 3})
	b.Write([]byte{9, 0, 3})
	lbls, err := ReadLabels(&b, 0)
	if err != nil || len(lbls) != 3 || lbls[0] != 9 {
		t.Fatalf("labels %v, %v", lbls, err)
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name, want string
		data       []byte
		labels     bool
	}{
		{"short header", "header", []byte{0, 0}, false},
		{"bad magic", "magic", idx3(1)[:0:0], false},
		{"truncated", "reading 2 images", idx3(2)[:16+Pixels], false},
		{"label out of range", "want < 10", append([]byte{0, 0, 8, 1, 0, 0, 0, 1}, 12), true},
	}
	tests[1].data = append([]byte{0, 0, 8, 1}, idx3(1)[4:]...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.labels {
				_, err = ReadLabels(bytes.NewReader(tc.data), 0)
			} else {
				_, err = ReadImages(bytes.NewReader(tc.data), 0)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
		})
	}
}

// TestLoadDebian reads the real test split installed by dataset-fashion-mnist.
func TestLoadDebian(t *testing.T) {
	s, err := Load("", Test, 0)
	if errors.Is(err, ErrNotInstalled) {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must install dataset-fashion-mnist (hack/apt-packages.txt): %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 10000 {
		t.Fatalf("test split has %d examples, want 10000", s.Len())
	}
	// The test split is balanced: 1000 per class.
	var per [Classes]int
	for _, l := range s.Labels {
		per[l]++
	}
	for c, n := range per {
		if n != 1000 {
			t.Errorf("class %d (%s) has %d examples, want 1000", c, ClassNames[c], n)
		}
	}
	if f := s.Float32(0); len(f) != Pixels {
		t.Errorf("Float32 len %d", len(f))
	}
}

func FuzzReadImages(f *testing.F) {
	f.Add(idx3(1))
	f.Add([]byte{0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 28, 0, 0, 0, 28})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ReadImages(bytes.NewReader(b), 4) // must not panic
		_, _ = ReadLabels(bytes.NewReader(b), 4)
	})
}
