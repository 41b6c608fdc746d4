package collector

import (
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// labelSet is a sorted, immutable set of label pairs built once per series
// and shared by every scrape, both as client_golang label pairs and as the
// text `{name="value",...}` of the exposition format, so a scrape neither
// rebuilds nor re-validates the labels of tens of thousands of series.
type labelSet struct {
	pairs []*dto.LabelPair
	text  string
}

// newLabelSet pairs names with values; the values come from venue
// instrument lists.
func newLabelSet(names []string, values ...string) labelSet {
	pairs := make([]*dto.LabelPair, len(names))
	for i, n := range names {
		name, value := n, values[i]
		pairs[i] = &dto.LabelPair{Name: &name, Value: &value}
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].GetName() < pairs[j].GetName() })
	var b strings.Builder
	b.WriteByte('{')
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p.GetName())
		b.WriteString(`="`)
		b.WriteString(escapeLabelValue(p.GetValue()))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return labelSet{pairs: pairs, text: b.String()}
}

// escapeLabelValue escapes a label value for the text exposition format.
func escapeLabelValue(v string) string {
	if !strings.ContainsAny(v, "\\\"\n") {
		return v
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

// cachedMetric is a constant metric with precomputed labels.
type cachedMetric struct {
	desc    *prometheus.Desc
	labels  []*dto.LabelPair
	value   float64
	counter bool
	// storage for Write, so one scrape of one series is one allocation
	c dto.Counter
	g dto.Gauge
}

func (m *cachedMetric) Desc() *prometheus.Desc { return m.desc }

func (m *cachedMetric) Write(out *dto.Metric) error {
	out.Label = m.labels
	if m.counter {
		m.c.Value = &m.value
		out.Counter = &m.c
	} else {
		m.g.Value = &m.value
		out.Gauge = &m.g
	}
	return nil
}

func metricOf(f *family, ls labelSet, v float64) prometheus.Metric {
	return &cachedMetric{desc: f.desc, labels: ls.pairs, value: v, counter: f.counter}
}
