package dispatcher

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"

	"github.com/infadapter/infadapter/pkg/oip"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func jsonValid(b []byte) bool { return validJSON(b) }

// readBody reads a request body of at most maxBytes (413 beyond). With a
// declared Content-Length it reads into one exactly sized buffer (net/http
// enforces the length) instead of io.ReadAll's growing copies.
func readBody(r *http.Request, maxBytes int64) ([]byte, error) {
	if cl := r.ContentLength; cl > 0 && cl <= maxBytes {
		buf := make([]byte, cl)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, &oip.RequestError{Status: http.StatusBadRequest, Msg: "reading body: " + err.Error()}
		}
		return buf, nil
	}
	return oip.ReadBody(r.Body, maxBytes)
}

// parseRawHeader parses CRLF-terminated header lines (a fast-path
// request's forwarded header) into an http.Header, for the rare request
// to an https backend, which goes through http.Transport.
func parseRawHeader(raw []byte) (http.Header, error) {
	tr := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(raw), bytes.NewReader([]byte("\r\n")))))
	h, err := tr.ReadMIMEHeader()
	return http.Header(h), err
}
