package grafana

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/examples/simulator/sim"
)

// ---------------------------------------------------------------- model

// dashboard is the part of a Grafana dashboard JSON model the tests read.
type dashboard struct {
	file       string
	UID        string `json:"uid"`
	Title      string `json:"title"`
	ID         any    `json:"id"`
	Tags       []string
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *datasourceRef  `json:"datasource"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Datasource  *datasourceRef `json:"datasource"`
	GridPos     struct {
		H, W, X, Y int
	} `json:"gridPos"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"` // collapsed rows
}

type target struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Datasource *datasourceRef `json:"datasource"`
}

// query is one panel target, for messages and allowlists.
type query struct {
	dash  *dashboard
	panel panel
	ref   string
	expr  string
}

func (q query) String() string {
	return fmt.Sprintf("%s / %q / %s", q.dash.UID, q.panel.Title, q.ref)
}

const dashboardTag = "derivatives-exporter"

func loadDashboards(t *testing.T) []*dashboard {
	t.Helper()
	files, err := filepath.Glob("dashboards/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("found %d dashboards in grafana/dashboards, want at least 5", len(files))
	}
	var out []*dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := &dashboard{file: filepath.Base(f)}
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(d); err != nil {
			t.Errorf("%s: invalid JSON: %v", f, err)
			continue
		}
		if dec.More() {
			t.Errorf("%s: trailing data after the JSON document", f)
		}
		out = append(out, d)
	}
	return out
}

// allPanels flattens rows, collapsed ones included.
func (d *dashboard) allPanels() []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

func (d *dashboard) queries() []query {
	var out []query
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			out = append(out, query{dash: d, panel: p, ref: tg.RefID, expr: tg.Expr})
		}
	}
	return out
}

func (d *dashboard) variable(name string) *variable {
	for i := range d.Templating.List {
		if d.Templating.List[i].Name == name {
			return &d.Templating.List[i]
		}
	}
	return nil
}

// variableQuery returns the query string of a query variable, whichever
// of Grafana's two forms (string, or object with "query") it uses.
func (v *variable) variableQuery() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &o)
	return o.Query
}

// ---------------------------------------------------------------- rules

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func (r rule) name() string {
	if r.Record != "" {
		return r.Record
	}
	return r.Alert
}

// loadRules reads every grafana/rules/*.yml and returns the rules and the
// absolute paths of the files.
func loadRules(t *testing.T) ([]rule, []string) {
	t.Helper()
	files, err := filepath.Glob("rules/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules []rule
	var paths []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rf ruleFile
		if err := yaml.Unmarshal(b, &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range rf.Groups {
			rules = append(rules, g.Rules...)
		}
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, abs)
	}
	return rules, paths
}

func recordedNames(rules []rule) map[string]bool {
	out := map[string]bool{}
	for _, r := range rules {
		if r.Record != "" {
			out[r.Record] = true
		}
	}
	return out
}

// ---------------------------------------------------------------- PromQL scan

// exprIssues scans a PromQL expression (with Grafana variables) the way a
// linter would, without a full parser: it tracks the function calls that
// enclose every metric name and range selector. It reports rate()/irate()
// windows other than $__rate_interval, counters and histogram series used
// outside rate()/increase()/irate(), and recording-rule names (level:metric:
// operation) that no rule file defines.
func exprIssues(expr string, recorded map[string]bool) []string {
	var issues []string
	type frame struct{ fn string }
	var stack []frame
	inCounterFn := func() bool {
		for _, f := range stack {
			switch f.fn {
			case "rate", "increase", "irate":
				return true
			}
		}
		return false
	}
	innermost := func() string {
		for i := len(stack) - 1; i >= 0; i-- {
			if stack[i].fn != "" {
				return stack[i].fn
			}
		}
		return ""
	}
	labelLists := map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
	keywords := map[string]bool{"and": true, "or": true, "unless": true, "offset": true, "bool": true, "inf": true, "nan": true, "atan2": true}

	s := expr
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(s) && s[j] != c {
				if s[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			i = j + 1
		case c == '{':
			// Label matchers: skip, strings included.
			j := i + 1
			for j < len(s) && s[j] != '}' {
				if s[j] == '"' || s[j] == '\'' || s[j] == '`' {
					q := s[j]
					j++
					for j < len(s) && s[j] != q {
						if s[j] == '\\' {
							j++
						}
						j++
					}
				}
				j++
			}
			i = j + 1
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				issues = append(issues, "unterminated range selector")
				return issues
			}
			rng := s[i+1 : i+j]
			if fn := innermost(); (fn == "rate" || fn == "irate") && rng != "$__rate_interval" {
				issues = append(issues, fmt.Sprintf("%s() over [%s], want [$__rate_interval]", fn, rng))
			}
			i += j + 1
		case c == '(':
			stack = append(stack, frame{})
			i++
		case c == ')':
			if len(stack) == 0 {
				issues = append(issues, "unbalanced )")
				return issues
			}
			stack = stack[:len(stack)-1]
			i++
		case c >= '0' && c <= '9' || c == '.':
			j := i
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == 'e' || s[j] == 'E' ||
				(s[j] == '+' || s[j] == '-') && j > i && (s[j-1] == 'e' || s[j-1] == 'E') ||
				s[j] == 'x' || s[j] >= 'a' && s[j] <= 'f' || s[j] >= 'A' && s[j] <= 'F' || s[j] == 'h' || s[j] == 'm' || s[j] == 's' || s[j] == 'd' || s[j] == 'w' || s[j] == 'y') {
				j++
			}
			i = j
		case c == '$':
			j := i + 1
			for j < len(s) && (isIdent(s[j]) || s[j] == '{' || s[j] == '}') {
				j++
			}
			i = j
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdent(s[j]) {
				j++
			}
			word := s[i:j]
			k := j
			for k < len(s) && (s[k] == ' ' || s[k] == '\n' || s[k] == '\t') {
				k++
			}
			switch {
			case k < len(s) && s[k] == '(' && labelLists[word]:
				// A label list: skip it.
				end := strings.IndexByte(s[k:], ')')
				if end < 0 {
					issues = append(issues, "unterminated label list")
					return issues
				}
				i = k + end + 1
				continue
			case k < len(s) && s[k] == '(':
				stack = append(stack, frame{fn: word})
				i = k + 1
				continue
			case word == "offset":
				p := strings.TrimRight(s[:i], " \t\n")
				if p == "" || !(p[len(p)-1] == '}' || p[len(p)-1] == ']' || isIdent(p[len(p)-1])) {
					issues = append(issues, "offset must follow a selector or a subquery, not an aggregation or a parenthesis")
				}
			case labelLists[word] || keywords[strings.ToLower(word)]:
			case strings.Contains(word, ":"):
				if !recorded[word] {
					issues = append(issues, fmt.Sprintf("recording rule %s is not defined in grafana/rules", word))
				}
			case isCounterSeries(word) && !inCounterFn():
				issues = append(issues, fmt.Sprintf("%s used outside rate()/increase()/irate()", word))
			}
			i = j
		default:
			i++
		}
	}
	if len(stack) != 0 {
		issues = append(issues, "unbalanced (")
	}
	return issues
}

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdent(c byte) bool      { return isIdentStart(c) || c >= '0' && c <= '9' || c == ':' }

// isCounterSeries reports whether a metric name is a counter or a part of a
// histogram, which only make sense through rate(), increase() or irate().
func isCounterSeries(name string) bool {
	if strings.HasPrefix(name, "crypto_") && strings.HasSuffix(name, "_total") {
		return true
	}
	for _, suf := range []string{"_count", "_bucket", "_sum"} {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	return false
}

func TestExprIssues(t *testing.T) {
	rec := map[string]bool{"coin:x:sum": true}
	for _, c := range []struct {
		expr string
		want int
	}{
		{`sum(rate(crypto_liquidations_total{coin=~"$coin"}[$__rate_interval]))`, 0},
		{`sum(rate(crypto_liquidations_total[5m]))`, 1},
		{`sum(crypto_liquidations_total)`, 1},
		{`max without (instance, pod) (increase(crypto_liquidation_size_usd_bucket{le="999999.99"}[$__range]))`, 0},
		{`histogram_quantile(0.9, sum by (le) (rate(crypto_liquidation_size_usd_bucket[$__rate_interval])))`, 0},
		{`crypto_liquidation_size_usd_count - 1`, 1},
		{`coin:x:sum / coin:x:sum offset 1d - 1`, 0},
		{`coin:y:sum`, 1},
		{`sum by (side) (max_over_time(crypto_liquidation_largest_usd{side=~"long|short"}[$__range]))`, 0},
		{`sum(rate(crypto_exporter_poll_failures_total[1m])) * 60 > 1e6`, 1},
		{`sum(x`, 1},
		{`max by (source) (crypto_fear_greed_index) offset 1d`, 1},
		{`max by (source) (crypto_fear_greed_index offset 1d)`, 0},
		{`max_over_time(x[1h:1m] offset 1d)`, 0},
		{`max_over_time(x[1h:1m]) offset 1d`, 1},
	} {
		if got := exprIssues(c.expr, rec); len(got) != c.want {
			t.Errorf("%s: %d issues %v, want %d", c.expr, len(got), got, c.want)
		}
	}
}

// ---------------------------------------------------------------- lint

var uidPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

// TestDashboardsLint applies the dashboard-linter rules the project follows
// (STYLE.md section 6.6) to every dashboard.
func TestDashboardsLint(t *testing.T) {
	rules, _ := loadRules(t)
	recorded := recordedNames(rules)
	uids, titles := map[string]string{}, map[string]string{}
	for _, d := range loadDashboards(t) {
		errf := func(format string, args ...any) {
			t.Helper()
			t.Errorf("%s: %s", d.file, fmt.Sprintf(format, args...))
		}
		if !uidPattern.MatchString(d.UID) {
			errf("uid %q: want a fixed uid of lower-case letters, digits and dashes, at most 40", d.UID)
		}
		if other, dup := uids[d.UID]; dup {
			errf("uid %q also used by %s", d.UID, other)
		}
		uids[d.UID] = d.file
		if d.Title == "" {
			errf("no title")
		}
		if other, dup := titles[d.Title]; dup {
			errf("title %q also used by %s", d.Title, other)
		}
		titles[d.Title] = d.file
		if d.ID != nil {
			errf("id %v: provisioned dashboards carry id null", d.ID)
		}
		if !contains(d.Tags, dashboardTag) {
			errf("tags %v lack %q", d.Tags, dashboardTag)
		}

		// Variables.
		ds := d.variable("datasource")
		if ds == nil || ds.Type != "datasource" || !strings.Contains(string(ds.Query), "prometheus") {
			errf("no datasource variable of type datasource for prometheus")
		}
		for _, name := range []string{"exchange", "coin"} {
			v := d.variable(name)
			if v == nil {
				errf("no %s variable", name)
				continue
			}
			if v.Type != "query" || !strings.Contains(v.variableQuery(), "label_values(") {
				errf("variable %s: want a label_values() query variable", name)
			}
			if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
				errf("variable %s does not use ${datasource}", name)
			}
			single := name == "coin" && d.UID == "derivatives-coin"
			if single && (v.Multi || v.IncludeAll) {
				errf("variable coin of the coin drill-down must be single-valued")
			}
			if !single && (!v.Multi || !v.IncludeAll) {
				errf("variable %s must be multi-valued with All", name)
			}
		}
		for _, v := range d.Templating.List {
			if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != "${datasource}") {
				errf("variable %s does not use ${datasource}", v.Name)
			}
		}

		// Panels.
		ids := map[int]bool{}
		panels := d.allPanels()
		if len(panels) == 0 {
			errf("no panels")
		}
		for i, p := range panels {
			perr := func(format string, args ...any) {
				t.Helper()
				errf("panel %q: %s", p.Title, fmt.Sprintf(format, args...))
			}
			if ids[p.ID] {
				perr("duplicate id %d", p.ID)
			}
			ids[p.ID] = true
			if p.Title == "" {
				perr("no title")
			}
			for _, o := range panels[i+1:] {
				if overlap(p, o) {
					perr("overlaps panel %q", o.Title)
				}
			}
			if p.Type == "row" || p.Type == "text" {
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
				perr("datasource %+v, want the ${datasource} variable", p.Datasource)
			}
			if strings.TrimSpace(p.Description) == "" {
				perr("no description")
			}
			if p.FieldConfig.Defaults.Unit == "" {
				perr("no unit")
			}
			if len(p.Targets) == 0 {
				perr("no targets")
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				if tg.RefID == "" || refs[tg.RefID] {
					perr("missing or duplicate refId %q", tg.RefID)
				}
				refs[tg.RefID] = true
				if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
					perr("target %s does not use ${datasource}", tg.RefID)
				}
				if strings.TrimSpace(tg.Expr) == "" {
					perr("target %s has no expr", tg.RefID)
					continue
				}
				for _, is := range exprIssues(tg.Expr, recorded) {
					perr("target %s: %s", tg.RefID, is)
				}
			}
		}
	}
}

func overlap(a, b panel) bool {
	ag, bg := a.GridPos, b.GridPos
	return ag.X < bg.X+bg.W && bg.X < ag.X+ag.W && ag.Y < bg.Y+bg.H && bg.Y < ag.Y+ag.H
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------- the stack

// The stack test runs the whole product on loopback ports: the offline
// simulator (in this process), the exporter binary built from the
// repository, a real Prometheus that scrapes it every second and evaluates
// grafana/rules/*.yml every second, and a real Alertmanager that delivers
// to a webhook in this test.
const (
	scrapeInterval = time.Second
	rateInterval   = "1m"  // $__rate_interval
	rangeWindow    = "5m"  // $__range
	stepInterval   = "15s" // $__interval
	webhookPath    = "/alerts"
)

// allowedEmpty lists the panel queries, without an offset, that may
// legitimately return no series on a Prometheus that has scraped the
// simulator for about half a minute, keyed "uid / panel title / refId",
// with the reason. None at present: the simulator's market makes every
// such panel return data, including those that are often empty in
// production (the extreme-funding table: its memecoins pay hundreds of
// percent a year; whale counts: 0 is a value).
//
// Queries with an offset (4h, 1d, 7d) are handled generically: a fresh
// TSDB has nothing that old, so they must parse, and the same query with
// the offsets removed must return data. The same holds for recording rules
// (coin:crypto_open_interest_coins:change_ratio4h).
var allowedEmpty = map[string]string{}

// alertsNotRequired explains why alerting-rule expressions are not required
// to return data: an alert expression is empty unless it fires. Each is
// checked to parse and evaluate, and Prometheus must report every rule
// healthy; one alert is followed end to end to a webhook.
const alertsNotRequired = "alerting rule expressions are empty unless the alert fires"

var offsetPattern = regexp.MustCompile(`\s+offset\s+-?[0-9]+[smhdwy]`)

func requireTool(t *testing.T, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Fatalf("%s not found on PATH: run make tools (installs Prometheus and Alertmanager)", strings.Join(names, " or "))
	return ""
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type process struct {
	name   string
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	err    error
}

// start runs a program until the test ends; its output is logged if the
// test fails.
func start(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			out := p.out.String()
			if len(out) > 8000 {
				out = "...\n" + out[len(out)-8000:]
			}
			t.Logf("%s output:\n%s", name, out)
		}
	})
	return p
}

func (p *process) alive(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("%s exited: %v\n%s", p.name, p.err, p.out.String())
	default:
	}
}

// buildExporter builds the exporter binary from the repository root.
func buildExporter(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "derivatives_exporter")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// promClient queries Prometheus' HTTP API.
type promClient struct {
	base string
	http *http.Client
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
	Values [][2]any          `json:"values"`
}

func (s promSample) float() float64 {
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

type promResult struct {
	Type    string
	Samples []promSample
	Scalar  float64
}

// empty reports whether an instant query returned nothing.
func (r promResult) empty() bool {
	switch r.Type {
	case "scalar", "string":
		return false
	}
	return len(r.Samples) == 0
}

// query runs an instant query at ts (zero = now).
func (c *promClient) query(expr string, ts time.Time) (promResult, error) {
	v := url.Values{"query": {expr}}
	if !ts.IsZero() {
		v.Set("time", strconv.FormatFloat(float64(ts.UnixMilli())/1000, 'f', 3, 64))
	}
	var body struct {
		Status    string          `json:"status"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Data      json.RawMessage `json:"data"`
	}
	if err := c.get("/api/v1/query?"+v.Encode(), &body); err != nil {
		return promResult{}, err
	}
	if body.Status != "success" {
		return promResult{}, fmt.Errorf("%s: %s", body.ErrorType, body.Error)
	}
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(body.Data, &data); err != nil {
		return promResult{}, err
	}
	r := promResult{Type: data.ResultType}
	switch data.ResultType {
	case "vector", "matrix":
		if err := json.Unmarshal(data.Result, &r.Samples); err != nil {
			return r, err
		}
	case "scalar":
		var sc [2]any
		if err := json.Unmarshal(data.Result, &sc); err != nil {
			return r, err
		}
		r.Scalar = promSample{Value: sc}.float()
	}
	return r, nil
}

// queryRange runs a range query over the last minute, as a time series
// panel does, and reports whether any series came back.
func (c *promClient) queryRange(expr string) (bool, error) {
	now := time.Now()
	v := url.Values{"query": {expr}, "step": {"5"},
		"start": {strconv.FormatInt(now.Add(-time.Minute).Unix(), 10)}, "end": {strconv.FormatInt(now.Unix(), 10)}}
	var body struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := c.get("/api/v1/query_range?"+v.Encode(), &body); err != nil {
		return false, err
	}
	if body.Status != "success" {
		return false, fmt.Errorf("%s: %s", body.ErrorType, body.Error)
	}
	return len(body.Data.Result) > 0, nil
}

// value runs a query that must return exactly one sample.
func (c *promClient) value(expr string, ts time.Time) (float64, error) {
	r, err := c.query(expr, ts)
	if err != nil {
		return 0, err
	}
	if r.Type == "scalar" {
		return r.Scalar, nil
	}
	if len(r.Samples) != 1 {
		return 0, fmt.Errorf("%d series, want 1", len(r.Samples))
	}
	return r.Samples[0].float(), nil
}

func (c *promClient) get(path string, v any) error {
	resp, err := c.http.Get(c.base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 500 {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}

// labelValues runs a dashboard variable's label_values(selector, label).
func (c *promClient) labelValues(q string) ([]string, error) {
	m := regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_]+)\)$`).FindStringSubmatch(strings.TrimSpace(q))
	if m == nil {
		return nil, fmt.Errorf("not a label_values(selector, label) query: %s", q)
	}
	var body struct {
		Status string   `json:"status"`
		Error  string   `json:"error"`
		Data   []string `json:"data"`
	}
	if err := c.get("/api/v1/label/"+m[2]+"/values?"+url.Values{"match[]": {m[1]}}.Encode(), &body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("%s", body.Error)
	}
	return body.Data, nil
}

// eventually polls cond every 250 ms until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string), procs ...*process) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		for _, p := range procs {
			p.alive(t)
		}
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (last: %s)", timeout, what, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// webhook records the alerts Alertmanager delivers.
type webhook struct {
	mu     sync.Mutex
	alerts []amAlert
}

type amAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path != webhookPath {
		http.NotFound(rw, r)
		return
	}
	var msg struct {
		Version string    `json:"version"`
		Alerts  []amAlert `json:"alerts"`
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	w.alerts = append(w.alerts, msg.Alerts...)
	w.mu.Unlock()
}

// find returns the first delivered alert whose labels include want.
func (w *webhook) find(want map[string]string) (amAlert, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.alerts {
		ok := true
		for k, v := range want {
			if a.Labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			return a, true
		}
	}
	return amAlert{}, false
}

// TestStack runs every dashboard query and every rule against a real
// Prometheus that scrapes the exporter fed by the simulator, checks the
// recorded liquidation totals against the simulator's ground truth, and
// follows a whale liquidation from the simulator to an Alertmanager webhook.
func TestStack(t *testing.T) {
	promBin := requireTool(t, "prometheus")
	requireTool(t, "promtool")
	amBin := requireTool(t, "prometheus-alertmanager", "alertmanager")
	testStart := time.Now()

	dashboards := loadDashboards(t)
	rules, ruleFiles := loadRules(t)
	if len(ruleFiles) == 0 {
		t.Fatal("no grafana/rules/*.yml")
	}
	for _, name := range []string{
		"exchange_coin_side:crypto_liquidation_notional_usd:increase1h", "exchange_coin_side:crypto_liquidation_notional_usd:increase4h",
		"exchange_coin_side:crypto_liquidation_notional_usd:increase12h", "exchange_coin_side:crypto_liquidation_notional_usd:increase24h",
		"exchange_coin_side:crypto_liquidations:increase1h", "exchange_coin_side:crypto_liquidations:increase4h",
		"exchange_coin_side:crypto_liquidations:increase12h", "exchange_coin_side:crypto_liquidations:increase24h",
		"exchange_coin:crypto_open_interest_usd:sum", "coin:crypto_open_interest_usd:sum",
	} {
		if !recordedNames(rules)[name] {
			t.Errorf("recording rule %s missing from grafana/rules", name)
		}
	}
	hasWhaleAlert := false
	for _, r := range rules {
		hasWhaleAlert = hasWhaleAlert || r.Alert == "CryptoWhaleLiquidation"
	}
	if !hasWhaleAlert {
		t.Fatal("alert CryptoWhaleLiquidation, which the end-to-end alert check follows, is missing from grafana/rules")
	}

	exporterBin := buildExporter(t)
	dir := t.TempDir()

	// The simulator, paused so that Prometheus sees every counter at 0
	// before the first liquidation.
	s := sim.New(sim.Config{Seed: 1, Paused: true, FirstCascade: 2 * time.Second, CascadeEvery: time.Minute})
	t.Cleanup(s.Close)
	simCtx, stopSim := context.WithCancel(context.Background())
	t.Cleanup(stopSim)

	cfgPath := filepath.Join(dir, "exporter.yml")
	if err := os.WriteFile(cfgPath, []byte(s.ExporterConfig()), 0o600); err != nil {
		t.Fatal(err)
	}
	exporterAddr := freeAddr(t)
	exporter := start(t, "exporter", exporterBin, "--config.file="+cfgPath, "--web.listen-address="+exporterAddr)

	// Alertmanager delivering everything to a webhook in this test.
	hook := &webhook{}
	hookSrv := httptest.NewServer(hook)
	t.Cleanup(hookSrv.Close)
	amAddr := freeAddr(t)
	amCfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(amCfg, []byte(fmt.Sprintf(`route:
  receiver: webhook
  group_by: [alertname, exchange, symbol]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: webhook
    webhook_configs:
      - url: %s%s
        send_resolved: false
`, hookSrv.URL, webhookPath)), 0o600); err != nil {
		t.Fatal(err)
	}
	am := start(t, "alertmanager", amBin, "--config.file="+amCfg, "--storage.path="+filepath.Join(dir, "am"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=")

	// Prometheus, scraping and evaluating every second.
	promAddr := freeAddr(t)
	var rf strings.Builder
	for _, f := range ruleFiles {
		fmt.Fprintf(&rf, "  - %q\n", f)
	}
	promCfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promCfg, []byte(fmt.Sprintf(`global:
  scrape_interval: %[1]s
  scrape_timeout: %[1]s
  evaluation_interval: %[1]s
rule_files:
%[2]salerting:
  alertmanagers:
    - static_configs:
        - targets: [%[3]q]
scrape_configs:
  - job_name: derivatives
    static_configs:
      - targets: [%[4]q]
`, scrapeInterval, rf.String(), amAddr, exporterAddr)), 0o600); err != nil {
		t.Fatal(err)
	}
	prom := start(t, "prometheus", promBin, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	pc := &promClient{base: "http://" + promAddr, http: &http.Client{Timeout: 10 * time.Second}}
	procs := []*process{exporter, am, prom}

	eventually(t, 30*time.Second, "Alertmanager ready", func() (bool, string) {
		resp, err := http.Get("http://" + amAddr + "/-/ready")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	}, procs...)
	eventually(t, 30*time.Second, "Prometheus ready", func() (bool, string) {
		resp, err := http.Get(pc.base + "/-/ready")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	}, procs...)

	// Every liquidation stream of every simulated venue subscribed, and
	// every liquidation counter scraped at 0 with the streams up.
	subCtx, cancelSub := context.WithTimeout(context.Background(), 30*time.Second)
	if err := s.WaitSubscribed(subCtx); err != nil {
		t.Fatal(err)
	}
	cancelSub()
	eventually(t, 30*time.Second, "liquidation counters scraped at 0 with the streams up", func() (bool, string) {
		n, err := pc.value(`count(crypto_liquidations_total == 0)`, time.Time{})
		if err != nil {
			return false, err.Error()
		}
		up, err := pc.value(`sum(crypto_exporter_stream_up)`, time.Time{})
		if err != nil {
			return false, err.Error()
		}
		streams, err := pc.value(`count(crypto_exporter_stream_up)`, time.Time{})
		return err == nil && n == float64(2*len(s.Instruments())) && up == streams && up >= float64(len(s.VenueNames())),
			fmt.Sprintf("%v zero counters, %v of %v streams up, err %v", n, up, streams, err)
	}, procs...)
	firstScrape := time.Now()

	// The market moves and liquidates; a cascade starts two seconds in.
	go func() { _ = s.Run(simCtx) }()
	s.SetLiquidations(true)

	// A whale liquidation on an instrument whose random flow never comes
	// near $1M, for the end-to-end alert.
	whale := map[string]string{"alertname": "CryptoWhaleLiquidation", "exchange": "binance", "market": "linear",
		"symbol": "1000PEPEUSDT", "coin": "PEPE", "side": "short", "severity": "info"}
	if _, ok := hook.find(whale); ok {
		t.Fatal("whale alert delivered before the whale liquidation")
	}
	injectCtx, cancelInject := context.WithTimeout(context.Background(), 10*time.Second)
	got, err := s.Inject(injectCtx, sim.Order{Symbol: "1000PEPEUSDT", Side: "short", NotionalUSD: 2_500_000})
	cancelInject()
	if err != nil || got.Sum(nil).Count != 1 {
		t.Fatalf("whale liquidation not delivered: %v %v", got, err)
	}

	// Data flows: liquidations, polled gauges, Fear & Greed, rules.
	for _, c := range []struct{ what, expr string }{
		{"liquidations counted", `sum(crypto_liquidations_total) > 50`},
		{"open interest of every instrument", fmt.Sprintf(`count(crypto_open_interest_usd) == %d`, len(s.Instruments()))},
		{"funding", `count(crypto_funding_rate_ratio) > 0`},
		{"24h volume", `count(crypto_volume_24h_usd) > 0`},
		{"Fear & Greed", `crypto_fear_greed_index`},
		{"recorded liquidation windows", `sum(exchange_coin_side:crypto_liquidation_notional_usd:increase24h) > 0`},
		{"recorded open interest", `coin:crypto_open_interest_usd:sum`},
		{"liquidations on both sides", `count(sum by (side) (increase(crypto_liquidations_total[1m])) > 0) == 2`},
	} {
		eventually(t, 60*time.Second, c.what, func() (bool, string) {
			r, err := pc.query(c.expr, time.Time{})
			if err != nil {
				return false, err.Error()
			}
			return !r.empty(), "empty"
		}, procs...)
	}

	// A few rate windows' worth of samples.
	if d := time.Until(firstScrape.Add(20 * time.Second)); d > 0 {
		time.Sleep(d)
	}

	t.Run("variables", func(t *testing.T) {
		for _, d := range dashboards {
			for _, v := range d.Templating.List {
				if v.Type != "query" {
					continue
				}
				q := substitute(v.variableQuery(), d)
				vals, err := pc.labelValues(q)
				if err != nil {
					t.Errorf("%s variable %s: %v", d.UID, v.Name, err)
				} else if len(vals) == 0 {
					t.Errorf("%s variable %s: %s has no values", d.UID, v.Name, q)
				}
			}
		}
	})

	t.Run("panels", func(t *testing.T) {
		n, offsets, ranges := 0, 0, 0
		for _, d := range dashboards {
			for _, q := range d.queries() {
				n++
				expr := substitute(q.expr, d)
				if strings.Contains(expr, "$") {
					t.Errorf("%s: unsubstituted variable in %s", q, expr)
					continue
				}
				r, err := pc.query(expr, time.Time{})
				if err != nil {
					t.Errorf("%s: %v\n%s", q, err, expr)
					continue
				}
				empty := r.empty()
				if q.panel.Type == "timeseries" {
					// Time series panels run range queries.
					ranges++
					some, err := pc.queryRange(expr)
					if err != nil {
						t.Errorf("%s: range query: %v\n%s", q, err, expr)
						continue
					}
					if some != !empty {
						t.Logf("%s: the range query returned data: %v, the instant query: %v", q, some, !empty)
					}
					empty = empty && !some
				}
				if !empty {
					continue
				}
				if offsetPattern.MatchString(expr) {
					// Nothing that old in a fresh TSDB: the query without
					// its offsets must return data.
					offsets++
					plain := offsetPattern.ReplaceAllString(expr, "")
					pr, err := pc.query(plain, time.Time{})
					if err != nil || pr.empty() {
						t.Errorf("%s: empty, and without its offsets still empty (err %v):\n%s", q, err, plain)
					}
					continue
				}
				if _, ok := allowedEmpty[q.String()]; !ok {
					t.Errorf("%s: no data\n%s", q, expr)
				}
			}
		}
		t.Logf("%d panel queries ran (%d also as range queries); %d returned no data because of their offset and were checked without it", n, ranges, offsets)
	})

	t.Run("rules", func(t *testing.T) {
		alerts := 0
		for _, r := range rules {
			if r.Alert != "" {
				alerts++
			}
			res, err := pc.query(r.Expr, time.Time{})
			if err != nil {
				t.Errorf("rule %s: %v", r.name(), err)
				continue
			}
			if r.Record == "" || !res.empty() {
				continue // alerting rules: alertsNotRequired
			}
			if offsetPattern.MatchString(r.Expr) {
				// A change over a window older than the TSDB.
				plain := offsetPattern.ReplaceAllString(r.Expr, "")
				if pr, err := pc.query(plain, time.Time{}); err != nil || pr.empty() {
					t.Errorf("recording rule %s: empty, and without its offsets still empty (err %v)", r.Record, err)
				}
				continue
			}
			t.Errorf("recording rule %s: no data\n%s", r.Record, r.Expr)
		}
		t.Logf("%d rules evaluated; %d alerting rules only had to parse and evaluate: %s", len(rules), alerts, alertsNotRequired)
		// Prometheus evaluated every rule without an error.
		eventually(t, 10*time.Second, "every rule evaluated and healthy", func() (bool, string) {
			var body struct {
				Data struct {
					Groups []struct {
						Rules []struct {
							Name           string `json:"name"`
							Health         string `json:"health"`
							LastError      string `json:"lastError"`
							LastEvaluation string `json:"lastEvaluation"`
						} `json:"rules"`
					} `json:"groups"`
				} `json:"data"`
			}
			if err := pc.get("/api/v1/rules", &body); err != nil {
				return false, err.Error()
			}
			seen := 0
			var bad []string
			for _, g := range body.Data.Groups {
				for _, r := range g.Rules {
					seen++
					if r.Health != "ok" {
						bad = append(bad, fmt.Sprintf("%s: %s %s", r.Name, r.Health, r.LastError))
					}
				}
			}
			return seen == len(rules) && len(bad) == 0, fmt.Sprintf("%d of %d rules loaded, unhealthy: %v", seen, len(rules), bad)
		}, procs...)
	})

	t.Run("alert to webhook", func(t *testing.T) {
		eventually(t, 30*time.Second, "CryptoWhaleLiquidation delivered to the webhook", func() (bool, string) {
			_, ok := hook.find(whale)
			hook.mu.Lock()
			n := len(hook.alerts)
			hook.mu.Unlock()
			return ok, fmt.Sprintf("%d alerts delivered so far", n)
		}, procs...)
		a, _ := hook.find(whale)
		if a.Status != "firing" || a.Annotations["summary"] == "" || !strings.Contains(a.Annotations["description"], "1000PEPEUSDT") ||
			a.Annotations["runbook_url"] == "" {
			t.Errorf("delivered alert: %+v", a)
		}
		t.Logf("delivered: %v %v", a.Labels, a.Annotations["description"])
	})

	t.Run("accuracy", func(t *testing.T) {
		checkAccuracy(t, s, pc, exporterAddr, procs)
	})

	// The simulator speaks the venues' protocols and stays within their
	// limits: nothing failed or was dropped along the way.
	t.Run("clean run", func(t *testing.T) {
		for _, expr := range []string{
			`sum(crypto_exporter_poll_failures_total)`,
			`sum(crypto_exporter_stream_decode_errors_total)`,
			`sum(crypto_exporter_stream_connects_total) - count(crypto_exporter_stream_connects_total)`,
			`count(crypto_exporter_poll_success == 0) or vector(0)`,
		} {
			if v, err := pc.value(expr, time.Time{}); err != nil || v != 0 {
				t.Errorf("%s = %v (err %v), want 0", expr, v, err)
			}
		}
	})
	t.Logf("stack test took %v", time.Since(testStart).Round(time.Second))
}

// TestSimulatorPrometheusConfig checks the Prometheus configuration of the
// simulator's quick start, which loads grafana/rules/*.yml.
func TestSimulatorPrometheusConfig(t *testing.T) {
	promtool := requireTool(t, "promtool")
	out, err := exec.Command(promtool, "check", "config", "../examples/simulator/prometheus.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "rule files found") {
		t.Errorf("the simulator's Prometheus configuration loads no rule files:\n%s", out)
	}
}

// substitute replaces Grafana's variables the way Grafana would with All
// selected (the coin drill-down with BTC).
func substitute(expr string, d *dashboard) string {
	coin := ".*"
	if v := d.variable("coin"); v != nil && !v.Multi && !v.IncludeAll {
		coin = "BTC"
	}
	r := strings.NewReplacer(
		"${datasource}", "",
		"$__rate_interval", rateInterval,
		"$__range", rangeWindow,
		"$__interval", stepInterval,
		"${exchange}", ".*", "$exchange", ".*",
		"${coin}", coin, "$coin", coin,
		"${job}", ".*", "$job", ".*",
	)
	return r.Replace(expr)
}

// checkAccuracy stops the liquidation flow and compares the recorded 1h
// windows with the simulator's ground truth.
//
// Systematic error. increase() extrapolates: with samples from t1 to t2 in
// its window [t-W, t], it scales the counter's delta by
// (t2 - t1 + d_start + d_end) / (t2 - t1), where d_end = t - t2 is up to
// one scrape interval (plus rule-evaluation lag) and d_start is the gap to
// the window's start, or 0 when the first sample is 0 (extrapolation stops
// where the counter would cross zero). The exporter pre-initialises every
// counter at 0 and the test starts liquidations only after Prometheus has
// scraped those zeros, so d_start = 0 and the error is d_end / (t2 - t1):
// positive, at most scrape interval / data age (1 s / 30 s, about 3 %, in
// this test; 15 s / 1 h = 0.4 % for a 1h window over a day-old exporter). The recording rules in
// grafana/rules/recording.yml avoid it: they take the exact difference
// (m - m offset W), or m itself where the series began at 0 inside the
// window, and fall back to increase() only across resets. Here they must
// equal the ground truth to within 1 % (in practice to rounding); raw
// increase() is checked against the bound above, and against the truth
// when evaluated exactly at the last scrape (d_end = 0).
func checkAccuracy(t *testing.T, s *sim.Sim, pc *promClient, exporterAddr string, procs []*process) {
	s.SetLiquidations(false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	truth := s.Truth()
	total := truth.Sum(nil)
	st := s.Stats()
	t.Logf("ground truth: %d liquidations, $%.2f (generated %d, delivered %d)", total.Count, total.NotionalUSD, st.Generated, st.Delivered)
	if total.Count < 100 {
		t.Fatalf("only %d liquidations delivered", total.Count)
	}

	// The exporter counted exactly what was delivered.
	eventually(t, 20*time.Second, "the exporter counted every delivered liquidation", func() (bool, string) {
		resp, err := http.Get("http://" + exporterAddr + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		m, err := collectortest.FromText(resp.Body)
		if err != nil {
			return false, err.Error()
		}
		c, n := m.Sum("crypto_liquidations_total"), m.Sum("crypto_liquidation_notional_usd_total")
		return c == float64(total.Count) && collectortest.Close(n, total.NotionalUSD),
			fmt.Sprintf("exporter %v / $%.2f", c, n)
	}, procs...)

	// Prometheus scraped the final counters and evaluated the rules on them.
	eventually(t, 20*time.Second, "the recording rule caught up", func() (bool, string) {
		c, err := pc.value(`sum(exchange_coin_side:crypto_liquidations:increase1h)`, time.Time{})
		return err == nil && c == float64(total.Count), fmt.Sprintf("%v (err %v)", c, err)
	}, procs...)
	time.Sleep(2 * scrapeInterval) // one more evaluation on the same data

	rel := func(got, want float64) float64 { return math.Abs(got-want) / want }
	got, err := pc.value(`sum(exchange_coin_side:crypto_liquidation_notional_usd:increase1h)`, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sum(exchange_coin_side:crypto_liquidation_notional_usd:increase1h) = %.2f, truth %.2f, relative error %.2g",
		got, total.NotionalUSD, rel(got, total.NotionalUSD))
	if rel(got, total.NotionalUSD) > 0.01 {
		t.Errorf("recorded 1h liquidations $%.2f, ground truth $%.2f: off by more than 1 %%", got, total.NotionalUSD)
	}

	// Per exchange, coin and side.
	type ecs struct{ exchange, coin, side string }
	want := map[ecs]float64{}
	for k, v := range truth {
		want[ecs{k.Exchange, k.Coin, k.Side}] += v.NotionalUSD
	}
	// Every simulated venue took part (the per exchange, coin and side
	// comparison below then covers it).
	for _, ex := range s.VenueNames() {
		v := truth.Sum(func(k sim.Key) bool { return k.Exchange == ex })
		t.Logf("ground truth %s: %d liquidations, $%.2f", ex, v.Count, v.NotionalUSD)
		if v.Count == 0 {
			t.Errorf("no %s liquidation delivered", ex)
		}
	}
	r, err := pc.query(`exchange_coin_side:crypto_liquidation_notional_usd:increase1h > 0`, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Samples) != len(want) {
		t.Errorf("%d non-zero recorded series, ground truth has %d", len(r.Samples), len(want))
	}
	for _, smp := range r.Samples {
		k := ecs{smp.Metric["exchange"], smp.Metric["coin"], smp.Metric["side"]}
		if w := want[k]; w == 0 || rel(smp.float(), w) > 0.01 {
			t.Errorf("%v: recorded %.2f, ground truth %.2f", k, smp.float(), w)
		}
	}

	// Raw increase(): exact at the last scrape, bounded extrapolation after.
	last, err := pc.value(`max(timestamp(crypto_liquidation_notional_usd_total))`, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	lastScrape := time.UnixMilli(int64(math.Round(last * 1000)))
	const raw = `sum(increase(crypto_liquidation_notional_usd_total[1h]))`
	atScrape, err := pc.value(raw, lastScrape)
	if err != nil {
		t.Fatal(err)
	}
	if rel(atScrape, total.NotionalUSD) > 1e-6 {
		t.Errorf("raw increase at the last scrape %.2f, ground truth %.2f", atScrape, total.NotionalUSD)
	}
	later := lastScrape.Add(scrapeInterval * 9 / 10)
	extrapolated, err := pc.value(raw, later)
	if err != nil {
		t.Fatal(err)
	}
	// The covered interval t2 - t1: from the first sample in the window.
	fr, err := pc.query(`crypto_liquidation_notional_usd_total{exchange="binance",symbol="BTCUSDT",side="long"}[1h]`, lastScrape)
	if err != nil || len(fr.Samples) != 1 || len(fr.Samples[0].Values) < 2 {
		t.Fatalf("samples of one counter: %v %v", fr, err)
	}
	first, _ := fr.Samples[0].Values[0][0].(float64)
	covered := last - first
	bound := total.NotionalUSD * (1 + later.Sub(lastScrape).Seconds()/covered)
	t.Logf("raw increase: %.2f at the last scrape, %.2f %.1f s later (bound %.2f = truth x (1 + %.1f s / %.0f s))",
		atScrape, extrapolated, later.Sub(lastScrape).Seconds(), bound, later.Sub(lastScrape).Seconds(), covered)
	if extrapolated < total.NotionalUSD*(1-1e-9) || extrapolated > bound*(1+1e-9) {
		t.Errorf("raw increase %.2f outside [truth %.2f, bound %.2f]", extrapolated, total.NotionalUSD, bound)
	}
}
