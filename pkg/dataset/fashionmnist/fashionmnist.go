package fashionmnist

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// DefaultDir is where Debian's dataset-fashion-mnist installs the files.
const DefaultDir = "/usr/share/datasets/fashion-mnist"

// Image geometry and class count.
const (
	Rows    = 28
	Cols    = 28
	Pixels  = Rows * Cols
	Classes = 10
)

// ClassNames are the labels' names, indexed by label.
var ClassNames = [Classes]string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// Set is a labelled image set. Images[i] holds Pixels bytes (0 = white
// background, 255 = ink), row-major.
type Set struct {
	Images [][]byte
	Labels []uint8
}

// Len is the number of examples.
func (s *Set) Len() int { return len(s.Labels) }

// Float32 returns image i scaled to [0,1] (pixel/255), the usual input
// normalisation of Fashion-MNIST classifiers.
func (s *Set) Float32(i int) []float32 {
	out := make([]float32, Pixels)
	for j, p := range s.Images[i] {
		out[j] = float32(p) / 255
	}
	return out
}

// ErrNotInstalled is returned by Load when the files are absent.
var ErrNotInstalled = errors.New("fashion-mnist files not found (install the Debian package dataset-fashion-mnist)")

// Split names which files to load.
type Split string

// The two splits of the data set.
const (
	Test  Split = "t10k"  // 10,000 images
	Train Split = "train" // 60,000 images
)

// Load reads split from dir (DefaultDir when empty), at most limit examples
// (all when limit <= 0). It accepts "<split>-images-idx3-ubyte[.gz]" and
// "<split>-labels-idx1-ubyte[.gz]". Absent files give an error wrapping
// ErrNotInstalled.
func Load(dir string, split Split, limit int) (*Set, error) {
	if dir == "" {
		dir = DefaultDir
	}
	imgPath, err := find(dir, string(split)+"-images-idx3-ubyte")
	if err != nil {
		return nil, err
	}
	lblPath, err := find(dir, string(split)+"-labels-idx1-ubyte")
	if err != nil {
		return nil, err
	}
	imgs, err := readFile(imgPath, func(r io.Reader) ([][]byte, error) { return ReadImages(r, limit) })
	if err != nil {
		return nil, err
	}
	lbls, err := readFile(lblPath, func(r io.Reader) ([]uint8, error) { return ReadLabels(r, limit) })
	if err != nil {
		return nil, err
	}
	if len(imgs) != len(lbls) {
		return nil, fmt.Errorf("fashion-mnist %s: %d images but %d labels", split, len(imgs), len(lbls))
	}
	return &Set{Images: imgs, Labels: lbls}, nil
}

func find(dir, base string) (string, error) {
	for _, name := range []string{base + ".gz", base} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no %s[.gz] in %s", ErrNotInstalled, base, dir)
}

func readFile[T any](path string, read func(io.Reader) (T, error)) (T, error) {
	var zero T
	f, err := os.Open(path)
	if err != nil {
		return zero, err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return zero, fmt.Errorf("%s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	v, err := read(r)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// IDX magic numbers: 0x00 0x00, type 0x08 (unsigned byte), dimension count.
const (
	magicLabels = 0x00000801
	magicImages = 0x00000803
)

// maxExamples bounds what a header may claim (the real files hold 60,000),
// so a corrupt header cannot ask for gigabytes.
const maxExamples = 1 << 20

// ReadImages reads an IDX3 image file (uncompressed) of 28×28 images, at
// most limit of them (all when limit <= 0).
func ReadImages(r io.Reader, limit int) ([][]byte, error) {
	var hdr [4]uint32
	if err := binary.Read(r, binary.BigEndian, &hdr); err != nil {
		return nil, fmt.Errorf("reading IDX3 header: %w", err)
	}
	if hdr[0] != magicImages {
		return nil, fmt.Errorf("bad IDX3 magic %#08x, want %#08x", hdr[0], magicImages)
	}
	n, rows, cols := int(hdr[1]), int(hdr[2]), int(hdr[3])
	if rows != Rows || cols != Cols {
		return nil, fmt.Errorf("images are %d×%d, want %d×%d", rows, cols, Rows, Cols)
	}
	if limit > 0 && limit < n {
		n = limit
	}
	if n > maxExamples {
		return nil, fmt.Errorf("header claims %d images, more than %d", n, maxExamples)
	}
	buf := make([]byte, n*Pixels)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("reading %d images: %w", n, err)
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = buf[i*Pixels : (i+1)*Pixels : (i+1)*Pixels]
	}
	return out, nil
}

// ReadLabels reads an IDX1 label file (uncompressed), at most limit labels.
func ReadLabels(r io.Reader, limit int) ([]uint8, error) {
	var hdr [2]uint32
	if err := binary.Read(r, binary.BigEndian, &hdr); err != nil {
		return nil, fmt.Errorf("reading IDX1 header: %w", err)
	}
	if hdr[0] != magicLabels {
		return nil, fmt.Errorf("bad IDX1 magic %#08x, want %#08x", hdr[0], magicLabels)
	}
	n := int(hdr[1])
	if limit > 0 && limit < n {
		n = limit
	}
	if n > maxExamples {
		return nil, fmt.Errorf("header claims %d labels, more than %d", n, maxExamples)
	}
	out := make([]uint8, n)
	if _, err := io.ReadFull(r, out); err != nil {
		return nil, fmt.Errorf("reading %d labels: %w", n, err)
	}
	for i, l := range out {
		if l >= Classes {
			return nil, fmt.Errorf("label %d is %d, want < %d", i, l, Classes)
		}
	}
	return out, nil
}
