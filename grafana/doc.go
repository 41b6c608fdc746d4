// Package grafana holds the Grafana dashboards (dashboards/*.json) and the
// Prometheus recording and alerting rules (rules/*.yml) shipped with
// derivatives_exporter, and the tests that keep them honest: a lint of every
// dashboard, and an end-to-end run in which a real Prometheus scrapes the
// exporter fed by the offline simulator (examples/simulator), evaluates the
// rules, sends alerts to a real Alertmanager, and answers every panel query.
//
// The package has no Go API; it exists for its tests.
package grafana
