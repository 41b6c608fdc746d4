package faultsuite

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/venuetest"
)

var (
	propSeeds = flag.Int("property.seeds", 4, "fault schedules TestNoLossNoDoubleCount runs")
	propSeed  = flag.Uint64("property.seed", 0, "run only this seed (replays a failure)")
)

// Schedule is one seeded random fault schedule of a no-loss property test.
type Schedule struct {
	Seed uint64
	// Rand is the schedule's random source, seeded with Seed.
	Rand  *rand.Rand
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
			s := &Schedule{Seed: seed, Rand: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
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

// GapFake is what Gap drives of a venue's fake.
type GapFake interface {
	SetRefuseConnections(bool)
	Disconnect()
	Liquidate(frame []byte) exchangetest.Delivered
	Connections() int
}

// Streams describes a venue's liquidation streams to the schedules'
// connection faults.
type Streams struct {
	Samples  func(testing.TB) collectortest.Samples // the collector's series now
	Exchange string                                 // the exchange label
	Names    []string                               // the streams' label values
	Fake     GapFake
}

func (st *Streams) val(s collectortest.Samples, name, stream string) float64 {
	return venuetest.Val(s, name, "exchange", st.Exchange, "stream", stream)
}

// Connects returns each stream's connection count.
func (st *Streams) Connects(t testing.TB) map[string]float64 {
	s := st.Samples(t)
	out := map[string]float64{}
	for _, name := range st.Names {
		out[name] = st.val(s, "crypto_exporter_stream_connects_total", name)
	}
	return out
}

// AfterFault waits until every stream has reconnected since before (from
// Connects) and is up, and the fake holds no connection but theirs, so
// that the next frame is not written to a connection that is going away.
func (st *Streams) AfterFault(t testing.TB, before map[string]float64) {
	t.Helper()
	venuetest.Eventually(t, st.Samples, venuetest.DefaultTimeout, "reconnect after a fault", func(s collectortest.Samples) bool {
		for _, name := range st.Names {
			if st.val(s, "crypto_exporter_stream_connects_total", name) <= before[name] ||
				st.val(s, "crypto_exporter_stream_up", name) != 1 {
				return false
			}
		}
		return st.Fake.Connections() == len(st.Names)
	})
}

// Gap drops every connection, refuses new ones while frames happen, and
// lets the streams reconnect: only what the venue recovers by itself
// (replay, backfill) can bring those orders. With racy the connections are
// not refused, and the frames race the reconnect (each reaches the new
// connection or falls in the gap).
func (s *Schedule) Gap(t testing.TB, st *Streams, frames [][]byte, racy bool) {
	t.Helper()
	before := st.Connects(t)
	if !racy {
		st.Fake.SetRefuseConnections(true)
	}
	st.Fake.Disconnect()
	if !racy {
		venuetest.Eventually(t, st.Samples, venuetest.DefaultTimeout, "streams down", func(smp collectortest.Samples) bool {
			for _, name := range st.Names {
				if st.val(smp, "crypto_exporter_stream_up", name) != 0 {
					return false
				}
			}
			return true
		})
	}
	for _, f := range frames {
		if racy {
			time.Sleep(time.Duration(s.Rand.IntN(3)) * time.Millisecond)
		}
		if d := st.Fake.Liquidate(f); !racy && d.Conns != 0 {
			t.Errorf("seed %d: gap frame delivered to %d connections", s.Seed, d.Conns)
		}
	}
	st.Fake.SetRefuseConnections(false)
	st.AfterFault(t, before)
}
