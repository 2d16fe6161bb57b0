package dispatcher

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"

	"github.com/infadapter/infadapter/pkg/oip"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func jsonValid(b []byte) bool { return validJSON(b) }

// binaryHeader is the OIP v2 binary tensor data extension's header (Triton
// and KServe): the body is a JSON header of that many bytes, then raw data.
const binaryHeader = "Inference-Header-Content-Length"

// validateInferBody checks an inference body before it is forwarded: the
// whole body must be JSON, or with the binary extension (binLen ≥ 0) its
// first binLen bytes; the raw tensor bytes after them are the model
// server's to check.
func validateInferBody(body []byte, binLen int64) error {
	if binLen < 0 {
		if !jsonValid(body) {
			return errors.New("request body is not well-formed JSON")
		}
		return nil
	}
	if binLen > int64(len(body)) {
		return fmt.Errorf("%s is %d, more than the body's %d bytes", binaryHeader, binLen, len(body))
	}
	if !jsonValid(body[:binLen]) {
		return fmt.Errorf("the first %d bytes of the body (%s) are not well-formed JSON", binLen, binaryHeader)
	}
	return nil
}

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
