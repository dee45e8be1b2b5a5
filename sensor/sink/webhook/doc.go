// Package webhook carries records to an HTTP receiver: each Send POSTs
// them as NDJSON (Content-Type: application/x-ndjson), one JSON line per
// record, in POSTs of at most MaxBatchBytes, optionally gzipped.
//
// It is a sink.Transport: it speaks HTTP and nothing more. A Delivery
// sink in front of it holds the records, calls Send, retries and counts.
//
// # What the answers mean
//
//   - 2xx: the receiver took every record of the POST; they are
//     delivered.
//   - 408, 429, 401, 403, 5xx, a redirect, a network error, a timeout:
//     nothing of that POST is delivered, and sending it again may work.
//     401 and 403 are here because an expired token or a key not yet
//     allowed is fixed by an operator while the records wait (alerts in
//     the spool), not a fault of the records. The error is a
//     *StatusError when there was an answer, whose RetryAfter is the
//     receiver's Retry-After.
//   - 413 for a POST of several records: the receiver takes smaller
//     bodies. The Transport halves its POSTs from then on and sends the
//     records again, in the same Send.
//   - any other 4xx (413 for one record): the receiver refuses those
//     records; sending them again would fail again. The error is a
//     *sink.Rejected whose Count is the number of records in the refused
//     POST, which the Delivery sink drops and counts.
//
// A receiver that answers 2xx and reports per-record failures in its
// body (Elasticsearch's _bulk API does) is not understood: point the
// webhook at an endpoint that answers for the whole POST.
//
// Redirects are not followed: they would carry the records, and perhaps
// the credentials, somewhere the configuration does not name.
//
// # Secrets
//
// The token or password is read from a file, by New only: nothing secret
// sits in the configuration, the URL, Name or an error. Name and errors
// show the URL without its query, which some receivers use for an API
// key. The proxy settings of the environment (HTTPS_PROXY, NO_PROXY) are
// honoured, as everywhere in Go.
//
// # Plain http
//
// http:// is allowed, as Packetbeat and most shippers allow it: a
// receiver in the same pod, or behind a local TLS-terminating proxy, is
// common. To any host but loopback, New logs a warning, since the records
// and any credentials then cross the network readable.
package webhook
