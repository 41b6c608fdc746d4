// Package examples holds the deployment examples of derivatives_exporter
// (Prometheus, Alertmanager, Grafana provisioning, docker compose,
// Kubernetes, scaling) and, in its tests, the checks that keep them and the
// rules of grafana/rules valid: every YAML file parses, the rules follow the
// project's conventions and pass promtool, the configurations pass promtool
// and amtool, and the Kubernetes PrometheusRule matches grafana/rules.
package examples
