package dispatcher

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/infadapter/infadapter/pkg/oip"
)

// adminMaxBody bounds admin request bodies (a backend list is tiny).
const adminMaxBody = 1 << 20

// AdminHandler serves the admin API, every call authenticated by
// "Authorization: Bearer <Config.AdminToken>" (401 otherwise, and always
// when the token is empty). Bodies and answers are JSON.
//
//	GET    /admin/v1/models                      → []ModelStatus
//	GET    /admin/v1/models/{model}              → ModelStatus
//	PUT    /admin/v1/models/{model}/backends     ← []Backend (creates the model)
//	PUT    /admin/v1/models/{model}/weights      ← {"variant": weight, ...}
//	DELETE /admin/v1/models/{model}
//	GET    /admin/v1/models/{model}/arrivals?seconds=N → {"model", "counts": [...]}
func (d *Dispatcher) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/v1/models", func(w http.ResponseWriter, r *http.Request) {
		out := []ModelStatus{}
		for _, name := range d.Models() {
			if s, err := d.Status(name); err == nil {
				out = append(out, s)
			}
		}
		oip.WriteJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /admin/v1/models/{model}", func(w http.ResponseWriter, r *http.Request) {
		s, err := d.Status(r.PathValue("model"))
		if err != nil {
			adminError(w, err)
			return
		}
		oip.WriteJSON(w, http.StatusOK, s)
	})
	mux.HandleFunc("PUT /admin/v1/models/{model}/backends", func(w http.ResponseWriter, r *http.Request) {
		var bs []Backend
		if !decodeAdmin(w, r, &bs) {
			return
		}
		if err := d.SetBackends(r.PathValue("model"), bs); err != nil {
			adminError(w, err)
			return
		}
		s, _ := d.Status(r.PathValue("model"))
		oip.WriteJSON(w, http.StatusOK, s)
	})
	mux.HandleFunc("PUT /admin/v1/models/{model}/weights", func(w http.ResponseWriter, r *http.Request) {
		var ws map[string]float64
		if !decodeAdmin(w, r, &ws) {
			return
		}
		if err := d.SetWeights(r.PathValue("model"), ws); err != nil {
			adminError(w, err)
			return
		}
		s, _ := d.Status(r.PathValue("model"))
		oip.WriteJSON(w, http.StatusOK, s)
	})
	mux.HandleFunc("DELETE /admin/v1/models/{model}", func(w http.ResponseWriter, r *http.Request) {
		if err := d.RemoveModel(r.PathValue("model")); err != nil {
			adminError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /admin/v1/models/{model}/arrivals", func(w http.ResponseWriter, r *http.Request) {
		n := 60
		if s := r.URL.Query().Get("seconds"); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v < 1 {
				oip.WriteError(w, http.StatusBadRequest, fmt.Sprintf("seconds=%q: want a positive integer", s))
				return
			}
			n = v
		}
		name := r.PathValue("model")
		h := d.History(name, d.clock.Now(), n)
		if h == nil {
			adminError(w, fmt.Errorf("%w %q", ErrUnknownModel, name))
			return
		}
		oip.WriteJSON(w, http.StatusOK, map[string]any{"model": name, "counts": h})
	})
	return d.authenticate(mux)
}

func (d *Dispatcher) authenticate(next http.Handler) http.Handler {
	want := []byte(d.cfg.AdminToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if len(want) == 0 || !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="infadapter-dispatcher"`)
			oip.WriteError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func decodeAdmin(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := oip.ReadBody(r.Body, adminMaxBody)
	if err == nil {
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err = dec.Decode(v); err != nil {
			err = &oip.RequestError{Status: http.StatusBadRequest, Msg: "decoding body: " + err.Error()}
		}
	}
	if err != nil {
		oip.WriteError(w, oip.StatusOf(err), err.Error())
		return false
	}
	return true
}

func adminError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	if errors.Is(err, ErrUnknownModel) {
		status = http.StatusNotFound
	}
	oip.WriteError(w, status, err.Error())
}
