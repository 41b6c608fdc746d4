package faultsuite

import (
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"
)

var (
	propSeeds = flag.Int("property.seeds", 4, "fault schedules TestNoLossNoDoubleCount runs")
	propSeed  = flag.Uint64("property.seed", 0, "run only this seed (replays a failure)")
)

// Schedule is one seeded random fault schedule of a no-loss property test.
type Schedule struct {
	Seed  uint64
	trace []string
}

// Step records a step the schedule takes; the steps are printed if it
// fails.
func (s *Schedule) Step(format string, args ...any) {
	s.trace = append(s.trace, fmt.Sprintf(format, args...))
}

// Property runs run once per seed, each in its own parallel subtest (each
// schedule must start its own fake and venue): -property.seeds new seeds,
// or only -property.seed. A failing schedule prints its steps and the
// command that replays it; pkg is the package's directory
// ("./exchanges/okx/").
func Property(t *testing.T, pkg string, run func(t *testing.T, s *Schedule)) {
	var seeds []uint64
	if *propSeed != 0 {
		seeds = append(seeds, *propSeed)
	} else {
		base := uint64(time.Now().UnixNano())
		for i := range *propSeeds {
			seeds = append(seeds, base+uint64(i))
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			s := &Schedule{Seed: seed}
			defer func() {
				if t.Failed() {
					if len(s.trace) > 0 {
						t.Logf("seed %d steps: %s", seed, strings.Join(s.trace, " "))
					}
					t.Errorf("schedule failed; replay with: go test %s -run %s -property.seed=%d", pkg, strings.Split(t.Name(), "/")[0], seed)
				}
			}()
			run(t, s)
		})
	}
}
