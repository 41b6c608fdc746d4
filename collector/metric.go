package collector

import (
	"sort"
	"strings"
)

// labelText builds the text `{name="value",...}` of one series' labels in
// the exposition format, sorted by name. It is built once per series and
// shared by every scrape, so a scrape neither rebuilds nor re-validates the
// labels of tens of thousands of series; only the text is kept (no
// client_golang label pairs), which is what the /metrics handler writes.
func labelText(names []string, values ...string) string {
	idx := make([]int, len(names))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return names[idx[a]] < names[idx[b]] })
	n := 2
	for i := range names {
		n += len(names[i]) + len(values[i]) + 4
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteByte('{')
	for j, i := range idx {
		if j > 0 {
			b.WriteByte(',')
		}
		b.WriteString(names[i])
		b.WriteString(`="`)
		b.WriteString(escapeLabelValue(values[i]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// escapeLabelValue escapes a label value for the text exposition format.
func escapeLabelValue(v string) string {
	if !strings.ContainsAny(v, "\\\"\n") {
		return v
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}
