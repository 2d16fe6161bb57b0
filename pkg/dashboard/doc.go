// Package dashboard serves InfAdapter's live web dashboard from assets
// embedded in the binary (go:embed; no CDN, nothing external is fetched):
// load and forecast, cores and traffic share per variant, P99 latency against
// the SLO, planned and served accuracy. The page polls two JSON endpoints,
// /api/state (a Source's snapshot) and /api/decisions (the loop's journal),
// once a second and draws plain SVG charts.
package dashboard
