// Package collectortest reads exposition output into flat samples so tests
// can compare /metrics series by series.
package collectortest

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Samples maps a series key (see Key) to its value. Histograms contribute
// their _count and _sum series.
type Samples map[string]float64

// Key builds the key of a series from its name and label pairs, in any order:
// Key("up", "job", "x") == `up{job="x"}`.
func Key(name string, labelPairs ...string) string {
	if len(labelPairs)%2 != 0 {
		panic("collectortest.Key: odd number of label arguments")
	}
	type kv struct{ k, v string }
	kvs := make([]kv, 0, len(labelPairs)/2)
	for i := 0; i < len(labelPairs); i += 2 {
		kvs = append(kvs, kv{labelPairs[i], labelPairs[i+1]})
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].k < kvs[j].k })
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, p := range kvs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", p.k, p.v)
	}
	b.WriteByte('}')
	return b.String()
}

// FromText parses the Prometheus text format.
func FromText(r io.Reader) (Samples, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	out := Samples{}
	for _, mf := range fams {
		out.add(mf)
	}
	return out, nil
}

// FromGatherer gathers g.
func FromGatherer(g prometheus.Gatherer) (Samples, error) {
	fams, err := g.Gather()
	if err != nil {
		return nil, err
	}
	out := Samples{}
	for _, mf := range fams {
		out.add(mf)
	}
	return out, nil
}

// FromCollector registers c on a fresh registry and gathers it.
func FromCollector(c prometheus.Collector) (Samples, error) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	return FromGatherer(reg)
}

func (s Samples) add(mf *dto.MetricFamily) {
	for _, m := range mf.GetMetric() {
		pairs := make([]string, 0, 2*len(m.GetLabel()))
		for _, l := range m.GetLabel() {
			pairs = append(pairs, l.GetName(), l.GetValue())
		}
		name := mf.GetName()
		switch {
		case m.Counter != nil:
			s[Key(name, pairs...)] = m.GetCounter().GetValue()
		case m.Gauge != nil:
			s[Key(name, pairs...)] = m.GetGauge().GetValue()
		case m.Untyped != nil:
			s[Key(name, pairs...)] = m.GetUntyped().GetValue()
		case m.Histogram != nil:
			s[Key(name+"_count", pairs...)] = float64(m.GetHistogram().GetSampleCount())
			s[Key(name+"_sum", pairs...)] = m.GetHistogram().GetSampleSum()
		}
	}
}

// Get returns one series' value.
func (s Samples) Get(name string, labelPairs ...string) (float64, bool) {
	v, ok := s[Key(name, labelPairs...)]
	return v, ok
}

// Names returns the keys of every series of a metric name, sorted.
func (s Samples) Names(name string) []string {
	var out []string
	for k := range s {
		if strings.HasPrefix(k, name+"{") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Sum adds every series of name whose labels contain all the given pairs.
func (s Samples) Sum(name string, labelPairs ...string) float64 {
	total := 0.0
	for _, k := range s.Names(name) {
		match := true
		for i := 0; i+1 < len(labelPairs); i += 2 {
			if !strings.Contains(k, fmt.Sprintf("%s=%q", labelPairs[i], labelPairs[i+1])) {
				match = false
				break
			}
		}
		if match {
			total += s[k]
		}
	}
	return total
}

// Close reports whether two floats agree to a relative tolerance of 1e-9.
func Close(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}
