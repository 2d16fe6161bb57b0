package dispatcher

import (
	"bytes"
	"io"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func jsonValid(b []byte) bool { return validJSON(b) }
