// Package report renders simulation results as one self-contained HTML
// page with inline SVG plots (no scripts, no external assets): a summary
// table and, per policy, load vs forecast, cores per variant (stacked),
// load-weighted accuracy and P99 latency against the SLO over time, in the
// style of the paper's figures. Pure rendering: Render writes to an
// io.Writer; WriteDir is the only function touching the file system.
package report
