// Package report makes the lab report of a replay: one self-contained HTML
// file (alerts first, each with its evidence in plain words; a table per host
// and process; a timeline; bytes out against bytes in per flow; entropy by
// payload class) and a short table for a terminal.
//
// A Collector takes the pipeline's records (sensor.ReplayConfig.Records)
// and alerts (sensor.Detection.Alerts, the JSON lines every alert output
// gets), keeps bounded summaries of them, and renders at the end. Every
// string it shows came from the network or a host and is rendered by
// html/template, which escapes it for where it lands; the charts are drawn
// by Chart.js, which is embedded in the page, so the page needs no network.
package report
