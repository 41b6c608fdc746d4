package examples

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "regenerate kubernetes/prometheusrule.yml from ../grafana/rules")

// Paths, relative to this package's directory (where go test runs).
const (
	rulesDir          = "../grafana/rules"
	rulesReadme       = "../grafana/README.md"
	prometheusRuleYML = "kubernetes/prometheusrule.yml"
	runbookBase       = "https://github.com/derivatives-exporter/derivatives_exporter/blob/main/grafana/README.md#alert-"
)

// The recording rules the dashboards rely on.
var agreedRecords = []string{
	"exchange_coin_side:crypto_liquidation_notional_usd:increase1h",
	"exchange_coin_side:crypto_liquidation_notional_usd:increase4h",
	"exchange_coin_side:crypto_liquidation_notional_usd:increase12h",
	"exchange_coin_side:crypto_liquidation_notional_usd:increase24h",
	"exchange_coin_side:crypto_liquidations:increase1h",
	"exchange_coin_side:crypto_liquidations:increase4h",
	"exchange_coin_side:crypto_liquidations:increase12h",
	"exchange_coin_side:crypto_liquidations:increase24h",
	"exchange_coin:crypto_open_interest_usd:sum",
	"coin:crypto_open_interest_usd:sum",
}

// Prometheus rule file format.
type ruleFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

type ruleGroup struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval,omitempty"`
	Rules    []rule `yaml:"rules"`
}

type rule struct {
	Record      string            `yaml:"record,omitempty"`
	Alert       string            `yaml:"alert,omitempty"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// promtool test rules format (the parts the conventions test reads).
type ruleTestFile struct {
	RuleFiles          []string   `yaml:"rule_files"`
	EvaluationInterval string     `yaml:"evaluation_interval"`
	GroupEvalOrder     []string   `yaml:"group_eval_order"`
	Tests              []ruleTest `yaml:"tests"`
}

type ruleTest struct {
	Name        string `yaml:"name"`
	Interval    string `yaml:"interval"`
	InputSeries []struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	} `yaml:"input_series"`
	AlertRuleTests []struct {
		AlertName string `yaml:"alertname"`
		EvalTime  string `yaml:"eval_time"`
		ExpAlerts []struct {
			ExpLabels      map[string]string `yaml:"exp_labels"`
			ExpAnnotations map[string]string `yaml:"exp_annotations"`
		} `yaml:"exp_alerts"`
	} `yaml:"alert_rule_test"`
	PromQLExprTests []struct {
		Expr       string `yaml:"expr"`
		EvalTime   string `yaml:"eval_time"`
		ExpSamples []struct {
			Labels string  `yaml:"labels"`
			Value  float64 `yaml:"value"`
		} `yaml:"exp_samples"`
	} `yaml:"promql_expr_test"`
}

// decodeStrict decodes one YAML document into v, rejecting unknown keys.
func decodeStrict(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// yamlDocs parses every document of a YAML file.
func yamlDocs(file string) ([]map[string]any, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	if len(docs) == 0 {
		return nil, errors.New("no YAML document")
	}
	return docs, nil
}

func ruleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(rulesDir, "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files in %s (%v)", rulesDir, err)
	}
	sort.Strings(files)
	return files
}

func ruleTestFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(rulesDir, "tests", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule tests in %s/tests (%v)", rulesDir, err)
	}
	sort.Strings(files)
	return files
}

func loadRules(t *testing.T) map[string]ruleFile {
	t.Helper()
	out := map[string]ruleFile{}
	for _, f := range ruleFiles(t) {
		var rf ruleFile
		decodeStrict(t, f, &rf)
		out[f] = rf
	}
	return out
}

// tool returns the path of a command-line tool the tests need, failing with
// the way to install it.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (%v): run `make tools` to install Prometheus and Alertmanager from Debian's packages", name, err)
	}
	return p
}

// run runs a tool from the repository root and fails with its output.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(tool(t, name), args...)
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	t.Logf("%s %s:\n%s", name, strings.Join(args, " "), out)
}

// fromRoot turns paths relative to this directory into paths relative to
// the repository root.
func fromRoot(t *testing.T, files []string) []string {
	t.Helper()
	out := make([]string, len(files))
	for i, f := range files {
		if filepath.IsAbs(f) {
			t.Fatalf("%s: want a relative path", f)
		}
		out[i] = filepath.Join("examples", f) // examples/../grafana/... cleans to grafana/...
	}
	return out
}

func TestYAMLFilesParse(t *testing.T) {
	var files []string
	for _, root := range []string{".", rulesDir} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) < 15 {
		t.Fatalf("found only %d YAML files: %v", len(files), files)
	}
	for _, f := range files {
		if _, err := yamlDocs(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestPromtoolCheckRules(t *testing.T) {
	run(t, "promtool", append([]string{"check", "rules"}, fromRoot(t, ruleFiles(t))...)...)
}

func TestPromtoolTestRules(t *testing.T) {
	tool(t, "promtool")
	for _, f := range fromRoot(t, ruleTestFiles(t)) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			run(t, "promtool", "test", "rules", f)
		})
	}
}

func TestPromtoolCheckConfig(t *testing.T) {
	configs := []string{"prometheus/prometheus.yml", "scaling/prometheus-a.yml", "scaling/prometheus-b.yml"}
	for _, c := range configs {
		var cfg struct {
			RuleFiles []string `yaml:"rule_files"`
		}
		b, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &cfg); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		// The rule files must resolve, relative to the config, to grafana/rules.
		if !slices.Equal(cfg.RuleFiles, []string{"../../grafana/rules/*.yml"}) {
			t.Errorf("%s: rule_files = %v, want [../../grafana/rules/*.yml]", c, cfg.RuleFiles)
		}
	}
	run(t, "promtool", append([]string{"check", "config"}, fromRoot(t, configs)...)...)
}

func TestAmtoolCheckConfig(t *testing.T) {
	run(t, "amtool", "check-config", "examples/alertmanager/alertmanager.yml")
}

// TestExporterConfigs validates the example exporter configurations with
// the exporter built from this repository (--config.check).
func TestExporterConfigs(t *testing.T) {
	configs := []string{"exporter/config.yml", "scaling/exporter-shard-a.yml", "scaling/exporter-shard-b.yml"}
	bin := filepath.Join(t.TempDir(), "derivatives_exporter")
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the exporter: %v", err)
	}
	build := exec.Command(gobin, "build", "-o", bin, ".")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, c := range configs {
		out, err := exec.Command(bin, "--config.check", "--config.file="+c).CombinedOutput()
		if err != nil {
			t.Errorf("derivatives_exporter --config.check --config.file=%s: %v\n%s", c, err, out)
		}
	}
}

var (
	alertNameRE  = regexp.MustCompile(`^Crypto(?:[A-Z][a-z0-9]+)+$`)
	recordNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$`)
	slugDropRE   = regexp.MustCompile(`[^a-z0-9 _-]`)
)

// githubSlug is the anchor GitHub gives a Markdown heading.
func githubSlug(heading string) string {
	s := slugDropRE.ReplaceAllString(strings.ToLower(strings.TrimSpace(heading)), "")
	return strings.ReplaceAll(s, " ", "-")
}

func TestRuleConventions(t *testing.T) {
	readme, err := os.ReadFile(rulesReadme)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(readme), "\n") {
		if h, ok := strings.CutPrefix(line, "#"); ok {
			anchors[githubSlug(strings.TrimLeft(h, "#"))] = true
		}
	}
	alertsHeader := ""
	if b, err := os.ReadFile(filepath.Join(rulesDir, "alerts.yml")); err == nil {
		alertsHeader, _, _ = strings.Cut(string(b), "\ngroups:")
	} else {
		t.Fatal(err)
	}

	records := map[string]bool{}
	alerts := map[string]rule{}
	for file, rf := range loadRules(t) {
		if len(rf.Groups) == 0 {
			t.Errorf("%s: no groups", file)
		}
		for _, g := range rf.Groups {
			if !strings.HasPrefix(g.Name, "derivatives-exporter") {
				t.Errorf("%s: group %q: name must start with derivatives-exporter", file, g.Name)
			}
			for _, r := range g.Rules {
				switch {
				case r.Record != "" && r.Alert != "":
					t.Errorf("%s: rule has both record %q and alert %q", file, r.Record, r.Alert)
				case r.Record != "":
					if !recordNameRE.MatchString(r.Record) {
						t.Errorf("%s: record %q is not level:metric:operation", file, r.Record)
					}
					if records[r.Record] {
						t.Errorf("%s: record %q defined twice", file, r.Record)
					}
					records[r.Record] = true
				case r.Alert != "":
					if _, dup := alerts[r.Alert]; dup {
						t.Errorf("%s: alert %q defined twice", file, r.Alert)
					}
					alerts[r.Alert] = r
					checkAlert(t, file, g.Name, r, anchors, alertsHeader)
				default:
					t.Errorf("%s: group %q: rule without record or alert", file, g.Name)
				}
			}
		}
	}
	for _, name := range agreedRecords {
		if !records[name] {
			t.Errorf("recording rule %s is missing (the dashboards use it)", name)
		}
	}
	for name := range records {
		// Either the full name or, for the window families, the name of the
		// family and the operation ("... (also `increase4h`)").
		i := strings.LastIndex(name, ":")
		if !strings.Contains(string(readme), "`"+name+"`") &&
			!(strings.Contains(string(readme), name[:i+1]) && strings.Contains(string(readme), "`"+name[i+1:]+"`")) {
			t.Errorf("%s does not document recording rule %s", rulesReadme, name)
		}
	}
	if len(alerts) == 0 {
		t.Fatal("no alerts")
	}
	checkRuleTests(t, records, alerts)
}

func checkAlert(t *testing.T, file, group string, r rule, anchors map[string]bool, alertsHeader string) {
	t.Helper()
	where := fmt.Sprintf("%s: alert %s", file, r.Alert)
	if !alertNameRE.MatchString(r.Alert) {
		t.Errorf("%s: name is not CamelCase with the Crypto prefix", where)
	}
	health := strings.HasPrefix(r.Alert, "CryptoExporter")
	if health != strings.Contains(group, "health") {
		t.Errorf("%s: health alerts are named CryptoExporter... and live in the health group (group %s)", where, group)
	}
	if len(r.Labels) != 1 || !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
		t.Errorf("%s: labels %v: want exactly severity critical, warning or info", where, r.Labels)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range r.Annotations {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(keys, []string{"description", "runbook_url", "summary"}) {
		t.Errorf("%s: annotations %v: want summary, description and runbook_url", where, keys)
	}
	if s := r.Annotations["summary"]; !strings.HasSuffix(s, ".") || strings.Contains(s, "{{") {
		t.Errorf("%s: summary %q must be static and end with a period", where, s)
	}
	if d := r.Annotations["description"]; !strings.Contains(d, "{{") {
		t.Errorf("%s: description %q is not templated", where, d)
	}
	anchor := "alert-" + strings.ToLower(r.Alert)
	if u := r.Annotations["runbook_url"]; u != runbookBase+strings.ToLower(r.Alert) {
		t.Errorf("%s: runbook_url %q, want %q", where, u, runbookBase+strings.ToLower(r.Alert))
	}
	if !anchors[anchor] {
		t.Errorf("%s: %s has no heading for #%s (write \"### Alert: %s\")", where, rulesReadme, anchor, r.Alert)
	}
	if !regexp.MustCompile(`(?m)^#\s+` + r.Alert + `\s`).MatchString(alertsHeader) {
		t.Errorf("%s: its thresholds are not listed in the comment at the top of alerts.yml", where)
	}
}

// checkRuleTests wants a firing and a non-firing promtool case for every
// alert, a hand-computed check of every recording rule, and the recording
// groups evaluated before the alert groups.
func checkRuleTests(t *testing.T, records map[string]bool, alerts map[string]rule) {
	t.Helper()
	var groups []string
	for _, f := range ruleFiles(t) {
		var rf ruleFile
		decodeStrict(t, f, &rf)
		for _, g := range rf.Groups {
			groups = append(groups, g.Name)
		}
	}
	firing, quiet, checked := map[string]int{}, map[string]int{}, map[string]bool{}
	for _, f := range ruleTestFiles(t) {
		var tf ruleTestFile
		decodeStrict(t, f, &tf)
		loadsAlerts := slices.Contains(tf.RuleFiles, "../alerts.yml")
		if loadsAlerts {
			var want []string
			for _, g := range groups {
				if !strings.Contains(g, "alerts") {
					want = append(want, g)
				}
			}
			for _, g := range groups {
				if strings.Contains(g, "alerts") {
					want = append(want, g)
				}
			}
			if !slices.Equal(tf.GroupEvalOrder, want) {
				t.Errorf("%s: group_eval_order %v, want every group, recording groups first: %v", f, tf.GroupEvalOrder, want)
			}
		}
		for _, tc := range tf.Tests {
			for _, at := range tc.AlertRuleTests {
				r, ok := alerts[at.AlertName]
				if !ok {
					t.Errorf("%s: test %q: unknown alert %s", f, tc.Name, at.AlertName)
					continue
				}
				if len(at.ExpAlerts) == 0 {
					quiet[at.AlertName]++
				} else {
					firing[at.AlertName]++
				}
				for _, ea := range at.ExpAlerts {
					if ea.ExpLabels["severity"] != r.Labels["severity"] ||
						ea.ExpAnnotations["summary"] != r.Annotations["summary"] ||
						ea.ExpAnnotations["runbook_url"] != r.Annotations["runbook_url"] ||
						ea.ExpAnnotations["description"] == "" {
						t.Errorf("%s: test %q: %s: expected labels and annotations must be complete (severity, summary, description, runbook_url)", f, tc.Name, at.AlertName)
					}
				}
			}
			for _, pt := range tc.PromQLExprTests {
				for name := range records {
					if strings.Contains(pt.Expr, name) && len(pt.ExpSamples) > 0 {
						checked[name] = true
					}
				}
			}
		}
	}
	for name := range alerts {
		if firing[name] == 0 || quiet[name] == 0 {
			t.Errorf("alert %s: %d firing and %d non-firing promtool cases, want at least one of each", name, firing[name], quiet[name])
		}
	}
	for name := range records {
		if !checked[name] {
			t.Errorf("recording rule %s: no promql_expr_test with expected samples", name)
		}
	}
}

// prometheusRule renders kubernetes/prometheusrule.yml: a PrometheusRule
// whose spec.groups are the groups of every file in grafana/rules, text and
// comments included.
func prometheusRule(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString(`# Generated from grafana/rules/*.yml; do not edit. After changing the rules run
#   go test ./examples/ -run TestPrometheusRuleInSync -update
# The ` + "`release`" + ` label must match your Prometheus' ruleSelector
# (kube-prometheus-stack: the Helm release name).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: derivatives-exporter
  labels:
    app.kubernetes.io/name: derivatives-exporter
    release: prometheus
spec:
  groups:
`)
	for i, f := range ruleFiles(t) {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, body, ok := strings.Cut(string(src), "\ngroups:\n")
		if !ok {
			t.Fatalf("%s: no top-level `groups:` line", f)
		}
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "    # grafana/rules/%s\n", filepath.Base(f))
		for _, line := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
			if strings.TrimSpace(line) != "" {
				b.WriteString("  " + line)
			}
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

func TestPrometheusRuleInSync(t *testing.T) {
	want := prometheusRule(t)
	if *update {
		if err := os.WriteFile(prometheusRuleYML, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(prometheusRuleYML)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date with %s: run go test ./examples/ -run TestPrometheusRuleInSync -update", prometheusRuleYML, rulesDir)
	}
	// The same, rule by rule.
	var pr struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name   string            `yaml:"name"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec ruleFile `yaml:"spec"`
	}
	decodeStrict(t, prometheusRuleYML, &pr)
	var all []ruleGroup
	for _, f := range ruleFiles(t) {
		var rf ruleFile
		decodeStrict(t, f, &rf)
		all = append(all, rf.Groups...)
	}
	if pr.Kind != "PrometheusRule" || pr.APIVersion != "monitoring.coreos.com/v1" {
		t.Errorf("%s: %s %s, want monitoring.coreos.com/v1 PrometheusRule", prometheusRuleYML, pr.APIVersion, pr.Kind)
	}
	if !reflect.DeepEqual(pr.Spec.Groups, all) {
		t.Errorf("%s: spec.groups differ from the groups of %s", prometheusRuleYML, rulesDir)
	}
}

// manifest is the part of a Kubernetes object the tests read.
type manifest map[string]any

func (m manifest) get(keys ...any) any {
	var v any = map[string]any(m)
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			mm, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = mm[k]
		case int:
			s, ok := v.([]any)
			if !ok || k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

func (m manifest) str(keys ...any) string {
	s, _ := m.get(keys...).(string)
	return s
}

func TestKubernetesManifests(t *testing.T) {
	files, err := filepath.Glob("kubernetes/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string]manifest{}
	resources := []string{}
	for _, f := range files {
		docs, err := yamlDocs(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, d := range docs {
			m := manifest(d)
			kind := m.str("kind")
			if m.str("apiVersion") == "" || kind == "" {
				t.Errorf("%s: object without apiVersion or kind", f)
			}
			if kind != "Kustomization" {
				if m.str("metadata", "name") == "" {
					t.Errorf("%s: %s without metadata.name", f, kind)
				}
				resources = append(resources, filepath.Base(f))
			}
			if _, dup := byKind[kind]; dup {
				t.Errorf("%s: a second %s", f, kind)
			}
			byKind[kind] = m
		}
	}
	kinds := slices.Sorted(func(yield func(string) bool) {
		for k := range byKind {
			if !yield(k) {
				return
			}
		}
	})
	wantKinds := []string{"ConfigMap", "Deployment", "Kustomization", "PrometheusRule", "Service", "ServiceMonitor"}
	if !slices.Equal(kinds, wantKinds) {
		t.Fatalf("kinds %v, want %v", kinds, wantKinds)
	}

	// kustomization.yml lists every other manifest.
	var listed []string
	for _, r := range byKind["Kustomization"].get("resources").([]any) {
		listed = append(listed, r.(string))
	}
	slices.Sort(listed)
	slices.Sort(resources)
	if !slices.Equal(listed, resources) {
		t.Errorf("kustomization.yml resources %v, want %v", listed, resources)
	}

	dep, svc, sm, cm := byKind["Deployment"], byKind["Service"], byKind["ServiceMonitor"], byKind["ConfigMap"]
	podLabels, _ := dep.get("spec", "template", "metadata", "labels").(map[string]any)
	if !reflect.DeepEqual(dep.get("spec", "selector", "matchLabels"), map[string]any(podLabels)) {
		t.Errorf("Deployment selector does not match its pod labels")
	}
	if r, _ := dep.get("spec", "replicas").(int); r < 2 {
		t.Errorf("Deployment replicas = %v, want at least 2 (the example shows high availability)", dep.get("spec", "replicas"))
	}
	container := manifest(dep.get("spec", "template", "spec", "containers", 0).(map[string]any))
	if container.str("ports", 0, "name") != "metrics" || container.get("ports", 0, "containerPort") != 9788 {
		t.Errorf("container port: want metrics/9788, got %v", container.get("ports"))
	}
	if !slices.Contains(container.get("args").([]any), any("--config.file=/etc/derivatives-exporter/config.yml")) ||
		container.str("volumeMounts", 0, "mountPath") != "/etc/derivatives-exporter" ||
		dep.str("spec", "template", "spec", "volumes", 0, "configMap", "name") != cm.str("metadata", "name") {
		t.Errorf("Deployment does not mount ConfigMap %s as /etc/derivatives-exporter/config.yml", cm.str("metadata", "name"))
	}
	if !reflect.DeepEqual(svc.get("spec", "selector"), map[string]any(podLabels)) {
		t.Errorf("Service selector %v does not select the pods %v", svc.get("spec", "selector"), podLabels)
	}
	if svc.str("spec", "ports", 0, "name") != "metrics" || svc.str("spec", "ports", 0, "targetPort") != "metrics" {
		t.Errorf("Service port must be named metrics and target the container's metrics port")
	}
	if !reflect.DeepEqual(sm.get("spec", "selector", "matchLabels"), svc.get("metadata", "labels")) ||
		sm.str("spec", "endpoints", 0, "port") != "metrics" {
		t.Errorf("ServiceMonitor does not select the Service's metrics port")
	}
	// The job is named after the Service; the absent/down alerts select it.
	if !regexp.MustCompile(`^derivatives.*$`).MatchString(svc.str("metadata", "name")) {
		t.Errorf("Service name %q does not match the alerts' job selector derivatives.*", svc.str("metadata", "name"))
	}
	config, err := os.ReadFile("exporter/config.yml")
	if err != nil {
		t.Fatal(err)
	}
	if cm.str("data", "config.yml") != string(config) {
		t.Errorf("ConfigMap data config.yml differs from exporter/config.yml")
	}
}

func TestCompose(t *testing.T) {
	var compose struct {
		Name     string `yaml:"name"`
		Services map[string]struct {
			Image string `yaml:"image"`
			Build *struct {
				Context    string `yaml:"context"`
				Dockerfile string `yaml:"dockerfile"`
			} `yaml:"build"`
			Command     []string          `yaml:"command"`
			Volumes     []string          `yaml:"volumes"`
			Ports       []string          `yaml:"ports"`
			DependsOn   []string          `yaml:"depends_on"`
			Environment map[string]string `yaml:"environment"`
			Restart     string            `yaml:"restart"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	decodeStrict(t, "docker-compose.yml", &compose)

	names := slices.Sorted(func(yield func(string) bool) {
		for k := range compose.Services {
			if !yield(k) {
				return
			}
		}
	})
	if want := []string{"alertmanager", "exporter", "grafana", "prometheus"}; !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}
	exp := compose.Services["exporter"]
	if exp.Build == nil {
		t.Fatal("exporter: not built from the repository")
	}
	if _, err := os.Stat(filepath.Join(exp.Build.Context, exp.Build.Dockerfile)); err != nil {
		t.Errorf("exporter build: %v", err)
	}
	wantPorts := map[string]string{"exporter": "9788:9788", "prometheus": "9090:9090", "alertmanager": "9093:9093", "grafana": "3000:3000"}
	mounts := map[string]map[string]string{} // service -> container path -> host path
	for name, s := range compose.Services {
		if !slices.Contains(s.Ports, wantPorts[name]) {
			t.Errorf("%s: ports %v, want %s", name, s.Ports, wantPorts[name])
		}
		for _, d := range s.DependsOn {
			if _, ok := compose.Services[d]; !ok {
				t.Errorf("%s: depends on unknown service %s", name, d)
			}
		}
		mounts[name] = map[string]string{}
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Errorf("%s: volume %q", name, v)
				continue
			}
			host, ctr := parts[0], parts[1]
			mounts[name][ctr] = host
			if strings.HasPrefix(host, ".") {
				if _, err := os.Stat(host); err != nil {
					t.Errorf("%s: volume source: %v", name, err)
				}
			} else if _, ok := compose.Volumes[host]; !ok {
				t.Errorf("%s: named volume %s is not declared", name, host)
			}
		}
	}

	// The files each service is pointed at are the ones mounted.
	flagValue := func(service, flag string) string {
		for _, c := range compose.Services[service].Command {
			if v, ok := strings.CutPrefix(c, flag+"="); ok {
				return v
			}
		}
		return ""
	}
	checkMount := func(service, ctrPath, hostPath string) {
		t.Helper()
		if got := mounts[service][ctrPath]; got != hostPath {
			t.Errorf("%s: %s is mounted from %q, want %q", service, ctrPath, got, hostPath)
		}
	}
	checkMount("exporter", flagValue("exporter", "--config.file"), "./exporter/config.yml")
	promConfig := flagValue("prometheus", "--config.file")
	checkMount("prometheus", promConfig, "./prometheus/prometheus.yml")
	// rule_files ../../grafana/rules/*.yml resolve, from the config's
	// directory in the container, to where grafana/rules is mounted.
	checkMount("prometheus", path.Dir(path.Join(path.Dir(promConfig), "../../grafana/rules/*.yml")), "../grafana/rules")
	checkMount("alertmanager", flagValue("alertmanager", "--config.file"), "./alertmanager/alertmanager.yml")
	checkMount("grafana", "/etc/grafana/provisioning", "./grafana/provisioning")

	var provider struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name                  string `yaml:"name"`
			Folder                string `yaml:"folder"`
			Type                  string `yaml:"type"`
			DisableDeletion       bool   `yaml:"disableDeletion"`
			AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
			UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
			Options               struct {
				Path                      string `yaml:"path"`
				FoldersFromFilesStructure bool   `yaml:"foldersFromFilesStructure"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	decodeStrict(t, "grafana/provisioning/dashboards/dashboards.yml", &provider)
	if len(provider.Providers) != 1 || provider.Providers[0].Type != "file" {
		t.Fatalf("dashboards.yml: want one file provider, got %+v", provider.Providers)
	}
	checkMount("grafana", provider.Providers[0].Options.Path, "../grafana/dashboards")

	var datasources struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name      string         `yaml:"name"`
			UID       string         `yaml:"uid"`
			Type      string         `yaml:"type"`
			Access    string         `yaml:"access"`
			URL       string         `yaml:"url"`
			IsDefault bool           `yaml:"isDefault"`
			Editable  bool           `yaml:"editable"`
			JSONData  map[string]any `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	decodeStrict(t, "grafana/provisioning/datasources/prometheus.yml", &datasources)
	hosts := map[string]string{}
	for _, ds := range datasources.Datasources {
		hosts[ds.Type] = ds.URL
	}
	if hosts["prometheus"] != "http://prometheus:9090" || hosts["alertmanager"] != "http://alertmanager:9093" {
		t.Errorf("datasources point at %v, want the compose services prometheus:9090 and alertmanager:9093", hosts)
	}

	// Prometheus scrapes the exporter service and alerts the alertmanager service.
	prom, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"'exporter:9788'", "'alertmanager:9093'"} {
		if !bytes.Contains(prom, []byte(target)) {
			t.Errorf("prometheus/prometheus.yml does not use the compose target %s", target)
		}
	}
}
