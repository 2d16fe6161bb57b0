package httpfast

import (
	"net/http"
	"sync/atomic"
	"time"
)

// Date is the current time in IMF-fixdate (a Date header value),
// recomputed once a second rather than formatted per response.
func Date() string {
	now := time.Now()
	if c := dateCache.Load(); c != nil && c.sec == now.Unix() {
		return c.val
	}
	c := &cachedDate{sec: now.Unix(), val: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(c)
	return c.val
}

type cachedDate struct {
	sec int64
	val string
}

var dateCache atomic.Pointer[cachedDate]
