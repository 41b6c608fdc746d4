package collector

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// labelSet is a sorted, immutable set of label pairs built once per series
// and shared by every scrape, so a scrape does not rebuild and re-validate
// the labels of tens of thousands of series.
type labelSet []*dto.LabelPair

// newLabelSet pairs names with values; the values must be valid UTF-8
// (they come from venue instrument lists, which are ASCII).
func newLabelSet(names []string, values ...string) labelSet {
	ls := make(labelSet, len(names))
	for i, n := range names {
		name, value := n, values[i]
		ls[i] = &dto.LabelPair{Name: &name, Value: &value}
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].GetName() < ls[j].GetName() })
	return ls
}

// cachedMetric is a constant metric with precomputed labels.
type cachedMetric struct {
	desc    *prometheus.Desc
	labels  labelSet
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

func counterOf(d *prometheus.Desc, ls labelSet, v float64) prometheus.Metric {
	return &cachedMetric{desc: d, labels: ls, value: v, counter: true}
}

func gaugeOf(d *prometheus.Desc, ls labelSet, v float64) prometheus.Metric {
	return &cachedMetric{desc: d, labels: ls, value: v}
}
