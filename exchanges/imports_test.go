package exchanges

import (
	"os/exec"
	"strings"
	"testing"
)

// TestVenueSideDoesNotImportPrometheus holds the package comment to its
// word: no package under exchanges/ depends on Prometheus, except the two
// that run venues against a collector in tests (venuetest, faultsuite).
func TestVenueSideDoesNotImportPrometheus(t *testing.T) {
	const module = "github.com/derivatives-exporter/derivatives_exporter/"
	testSupport := map[string]bool{
		module + "exchanges/venuetest":               true,
		module + "exchanges/exchangetest/faultsuite": true,
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := 0
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		pkgs++
		if testSupport[fields[0]] {
			continue
		}
		for _, dep := range fields[1:] {
			if strings.HasPrefix(dep, "github.com/prometheus/") || dep == module+"collector" {
				t.Errorf("%s depends on %s", fields[0], dep)
				break
			}
		}
	}
	if pkgs < 15 {
		t.Errorf("go list found %d packages under exchanges/, want every venue's", pkgs)
	}
}
