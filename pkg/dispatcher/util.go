package dispatcher

import (
	"bytes"
	"encoding/json"
	"io"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func jsonValid(b []byte) bool { return json.Valid(b) }
