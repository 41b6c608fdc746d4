// Command loadtest drives the exporter binary with a fake Binance USDⓈ-M
// market at a fixed liquidation rate and reports what it cost: CPU (from
// /proc), RSS, scrape latency percentiles, and whether every liquidation sent
// was counted exactly. It also measures start-up: the time from starting the
// exporter process to the first 200 answer of /metrics (polled every
// millisecond), for the load run and over --startups extra starts and stops
// before it.
//
//	go build -o /tmp/derivatives_exporter . && \
//	go run ./examples/loadtest --exporter /tmp/derivatives_exporter --rate 20000 --duration 60s
//
// Start-up only (no load), over 50 starts:
//
//	go run ./examples/loadtest --exporter /tmp/derivatives_exporter --startups 50 --duration 0
//
// It runs on loopback only and stops by itself after --duration. Only
// Binance runs, pointed at the fake (COIN-M at a closed loopback port);
// every other venue and Fear & Greed are disabled, so nothing waits for DNS
// or the internet.
//
// With --all-venues every venue and Fear & Greed run instead, each against
// its fake listing a realistic number of instruments (about 3,400 in all,
// see instruments.go), with liquidations at --rate (default 5,000 messages
// per second) spread over Binance, Bybit, OKX, Gate and Bitget. After every
// venue has subscribed and the series count has settled, one scraper
// scrapes every --solo-every for --solo (alternating plain and gzip), then
// --scrapers concurrent scrapers (--gzip-scrapers of them asking for gzip)
// scrape back to back for --duration; it reports scrape latency, errors,
// series and bytes per scrape, CPU, RSS, goroutines, the load average and
// whether every delivered liquidation was counted exactly, per venue:
//
//	go run ./examples/loadtest --all-venues --exporter /tmp/derivatives_exporter --duration 60s
//
// The fakes keep every frame they deliver, so this mode is meant for runs
// of minutes, not a soak.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
)

func main() {
	var (
		exporter = flag.String("exporter", "", "path of the derivatives_exporter binary (required)")
		rate     = flag.Int("rate", 20000, "liquidation messages per second")
		duration = flag.Duration("duration", 60*time.Second, "how long to send")
		symbols  = flag.Int("symbols", 500, "instruments listed by the fake")
		scrape   = flag.Duration("scrape-interval", time.Second, "how often to scrape /metrics while sending")
		faults   = flag.Duration("fault-every", 0, "drop every exporter connection this often (0 = never): the soak mode")
		startups = flag.Int("startups", 10, "extra exporter starts and stops before the load run, to measure start-up (0 = none)")

		allVenues    = flag.Bool("all-venues", false, "run every venue against realistic fakes (rate default 5000; --symbols, --scrape-interval, --fault-every and --startups do not apply)")
		solo         = flag.Duration("solo", 20*time.Second, "all venues: single-scraper phase before the concurrent one (0 = none)")
		soloEvery    = flag.Duration("solo-every", 100*time.Millisecond, "all venues: pause between the single scraper's scrapes")
		scrapers     = flag.Int("scrapers", 20, "all venues: concurrent scrapers during --duration")
		gzipScrapers = flag.Int("gzip-scrapers", 10, "all venues: how many of the concurrent scrapers ask for gzip")
		scrapePause  = flag.Duration("scrape-pause", 0, "all venues: pause between one concurrent scraper's scrapes (0 = back to back)")
		poll         = flag.Duration("poll-interval", 30*time.Second, "all venues: the exporter's polling interval")
		settle       = flag.Duration("settle", 120*time.Second, "all venues: longest wait for the series count to settle before the load")
	)
	flag.Func("exporter-env", "NAME=value added to the exporter's environment only, e.g. GOMEMLIMIT=64MiB (repeatable)", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("want NAME=value")
		}
		exporterEnv = append(exporterEnv, v)
		return nil
	})
	flag.Parse()
	if *exporter == "" {
		fmt.Fprintln(os.Stderr, "--exporter is required")
		os.Exit(2)
	}
	if *allVenues {
		r := 5000
		flag.Visit(func(f *flag.Flag) {
			if f.Name == "rate" {
				r = *rate
			}
		})
		if r <= 0 || *duration <= 0 || *scrapers < 1 || *gzipScrapers < 0 || *gzipScrapers > *scrapers || *solo < 0 {
			fmt.Fprintln(os.Stderr, "--rate, --duration and --scrapers must be positive, --gzip-scrapers between 0 and --scrapers, --solo not negative")
			os.Exit(2)
		}
		err := runAll(allOpts{bin: *exporter, rate: r, duration: *duration, solo: *solo, soloEvery: *soloEvery, scrapers: *scrapers,
			gzipScrapers: *gzipScrapers, scrapePause: *scrapePause, pollInterval: *poll, settle: *settle})
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		return
	}
	if *startups < 0 || *duration < 0 || (*startups == 0 && *duration == 0) {
		fmt.Fprintln(os.Stderr, "--startups and --duration must not be negative, and not both 0")
		os.Exit(2)
	}
	if err := run(*exporter, *rate, *duration, *symbols, *scrape, *faults, *startups); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(bin string, rate int, duration time.Duration, nsym int, scrapeEvery, faultEvery time.Duration, startups int) error {
	fake := exchangetest.NewBinanceMarket(exchangetest.BinanceUSDM)
	defer fake.Close()
	fake.SetWeightLimit(1 << 30)
	fake.SetKeepHistory(false)
	syms := make([]exchangetest.BinanceSymbol, 0, nsym)
	for i := range nsym {
		syms = append(syms, exchangetest.BinanceSymbol{Symbol: fmt.Sprintf("L%dUSDT", i), Pair: fmt.Sprintf("L%dUSDT", i),
			BaseAsset: fmt.Sprintf("L%d", i), QuoteAsset: "USDT", MarginAsset: "USDT", ContractType: "PERPETUAL", Status: "TRADING",
			MarkPrice: 100, IndexPrice: 100, LastFundingRate: 0.0001, NextFundingTime: 1_800_000_000_000, OpenInterest: 1000, Volume: 1, QuoteVolume: 100})
	}
	fake.SetSymbols(syms)

	dir, err := os.MkdirTemp("", "loadtest")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	// Every venue the config does not mention runs by default against the
	// live internet, so each one is disabled here explicitly.
	cfg := fmt.Sprintf(`exchanges:
  binance:
    endpoints: {usdm_rest: "%s", usdm_ws: "%s", coinm_rest: "http://127.0.0.1:1", coinm_ws: "ws://127.0.0.1:1"}
  bybit: {enabled: false}
  okx: {enabled: false}
  bitmex: {enabled: false}
  deribit: {enabled: false}
  gate: {enabled: false}
  bitget: {enabled: false}
  kraken: {enabled: false}
  dydx: {enabled: false}
  hyperliquid: {enabled: false}
fear_greed: {enabled: false}
polling: {interval: 5s}
`, fake.RESTURL(), fake.WSURL())
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}

	// Start-up over several starts: each exporter connects to the fake in
	// the background and is stopped (SIGTERM) once /metrics has answered.
	var ups []time.Duration
	for range startups {
		p, up, err := startExporter(bin, cfgPath)
		if err != nil {
			return err
		}
		p.stop()
		ups = append(ups, up)
	}
	sort.Slice(ups, func(i, j int) bool { return ups[i] < ups[j] })
	startupRow := func() {
		if len(ups) == 0 {
			return
		}
		r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
		fmt.Printf("| start-up over %d starts (process start -> first /metrics 200) | median %s, p90 %s, min %s, max %s |\n",
			len(ups), r(median(ups)), r(ups[len(ups)*9/10]), r(ups[0]), r(ups[len(ups)-1]))
	}
	if duration == 0 {
		fmt.Printf("| metric | value |\n|---|---|\n")
		startupRow()
		return nil
	}

	subscribedBefore := fake.Subscriptions()
	p, startup, err := startExporter(bin, cfgPath)
	if err != nil {
		return err
	}
	defer p.stop()
	addr, pid := p.addr, p.cmd.Process.Pid

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := fake.WaitSubscribed(ctx, subscribedBefore+1); err != nil {
		return fmt.Errorf("exporter did not subscribe: %w", err)
	}
	// Wait for discovery to have declared every instrument.
	for {
		s, err := scrapeOnce(addr)
		if err == nil && len(s.Names("crypto_market_info")) == nsym {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("instruments not discovered")
		}
		time.Sleep(100 * time.Millisecond)
	}

	frames := make([][]byte, 0, 1024)
	var wantNotional float64
	for i := range 1024 {
		qty, px := 0.5+float64(i%7), 100+float64(i%13)
		frames = append(frames, exchangetest.ForceOrderFrame(exchangetest.ForceOrder{Symbol: fmt.Sprintf("L%dUSDT", (i*31)%nsym),
			Side: []string{"SELL", "BUY"}[i%2], Qty: qty, Price: px, AvgPrice: px, FilledQty: qty, LastFilledQty: qty}))
	}
	notionalOf := func(i int) float64 { qty, px := 0.5+float64(i%7), 100+float64(i%13); return qty * px }

	cpu0, _ := procCPU(pid)
	rss0, _ := procRSS(pid)
	g0 := goroutines(addr)
	gc0 := ownMetric(addr, "go_gc_duration_seconds_count")
	start := time.Now()
	nextFault := start.Add(faultEvery)
	faultsDone := 0
	var latencies []time.Duration
	var scrapeErrs int
	stopScrape := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(scrapeEvery)
		defer t.Stop()
		for {
			select {
			case <-stopScrape:
				return
			case <-t.C:
			}
			t0 := time.Now()
			resp, err := http.Get("http://" + addr + "/metrics")
			if err != nil {
				scrapeErrs++
				continue
			}
			_, _ = bufio.NewReader(resp.Body).WriteTo(discard{})
			_ = resp.Body.Close()
			latencies = append(latencies, time.Since(t0))
		}
	}()

	// Send in 10 ms ticks.
	const tick = 10 * time.Millisecond
	perTick := max(1, rate*int(tick)/int(time.Second))
	sent, delivered := 0, 0
	batch := make([]exchangetest.Event, perTick)
	next := time.Now()
	// RSS and goroutines once a minute, for the soak's flatness check.
	type sample struct {
		at         time.Duration
		rss        int64
		goroutines float64
	}
	var samples []sample
	nextSample := start.Add(time.Minute)
	for time.Since(start) < duration {
		for i := range batch {
			batch[i] = exchangetest.Event{Frame: frames[(sent+i)&1023]}
		}
		// Play waits for the exporter to reconnect after a fault; a frame
		// no connection took within the fake's play timeout is not
		// delivered and is not expected.
		for i, d := range fake.Play(batch) {
			if d.Conns > 0 {
				delivered++
				wantNotional += notionalOf((sent + i) & 1023)
			}
		}
		sent += perTick
		if faultEvery > 0 && time.Now().After(nextFault) {
			// An abrupt close loses what is still in flight on the
			// socket, on a real venue as here: drop the connections once
			// everything delivered so far has been counted, so that the
			// totals check stays exact.
			waitCounted(addr, delivered, 10*time.Second)
			fake.Play([]exchangetest.Event{{Disconnect: true}})
			faultsDone++
			nextFault = nextFault.Add(faultEvery)
		}
		if time.Now().After(nextSample) {
			r, _ := procRSS(pid)
			samples = append(samples, sample{time.Since(start), r, goroutines(addr)})
			nextSample = nextSample.Add(time.Minute)
		}
		next = next.Add(tick)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
	}
	elapsed := time.Since(start)
	// Let the exporter drain, then check the totals.
	var got, gotNotional, decodeErrs float64
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		s, err := scrapeOnce(addr)
		if err == nil {
			got = s.Sum("crypto_liquidations_total")
			gotNotional = s.Sum("crypto_liquidation_notional_usd_total")
			decodeErrs = s.Sum("crypto_exporter_stream_decode_errors_total")
			if got >= float64(delivered) {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	cpu1, _ := procCPU(pid)
	close(stopScrape)
	wg.Wait()
	rss, _ := procRSS(pid)
	g1 := goroutines(addr)
	gc1 := ownMetric(addr, "go_gc_duration_seconds_count")

	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))]
	}
	ticks := float64(cpu1-cpu0) / 100 // USER_HZ
	fmt.Printf("| metric | value |\n|---|---|\n")
	fmt.Printf("| start-up of the load run (process start -> first /metrics 200) | %s |\n", startup.Round(10*time.Microsecond))
	startupRow()
	fmt.Printf("| messages sent | %d in %s (%.0f/s); %d delivered, %d not taken by any connection |\n", sent, elapsed.Round(time.Millisecond), float64(sent)/elapsed.Seconds(), delivered, sent-delivered)
	fmt.Printf("| messages counted | %.0f (drops %.0f, decode errors %.0f) |\n", got, float64(delivered)-got, decodeErrs)
	fmt.Printf("| notional exact | %v (counted %.2f, sent %.2f) |\n", collectortest.Close(gotNotional, wantNotional), gotNotional, wantNotional)
	fmt.Printf("| exporter CPU | %.1f %% of one core |\n", 100*ticks/elapsed.Seconds())
	fmt.Printf("| exporter RSS | %.1f MiB at start, %.1f MiB at end |\n", float64(rss0)/1024, float64(rss)/1024)
	if len(samples) >= 3 {
		// Flatness after warm-up: from the second minute's sample on.
		warm, last := samples[1], samples[len(samples)-1]
		peak := warm.rss
		for _, x := range samples[1:] {
			peak = max(peak, x.rss)
		}
		fmt.Printf("| exporter RSS after warm-up | %.1f MiB at %s, %.1f MiB at %s (%+.1f %%), peak %.1f MiB |\n",
			float64(warm.rss)/1024, warm.at.Round(time.Second), float64(last.rss)/1024, last.at.Round(time.Second),
			100*float64(last.rss-warm.rss)/float64(warm.rss), float64(peak)/1024)
		fmt.Printf("| exporter goroutines after warm-up | %.0f at %s, %.0f at %s |\n", warm.goroutines, warm.at.Round(time.Second), last.goroutines, last.at.Round(time.Second))
	}
	fmt.Printf("| exporter GC cycles | %.0f (%.1f/s) |\n", gc1-gc0, (gc1-gc0)/elapsed.Seconds())
	fmt.Printf("| exporter goroutines | %.0f at start, %.0f at end |\n", g0, g1)
	fmt.Printf("| faults (all connections dropped) | %d |\n", faultsDone)
	fmt.Printf("| scrapes | %d, errors %d, p50 %s, p99 %s |\n", len(latencies), scrapeErrs, pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond))
	if got != float64(delivered) || !collectortest.Close(gotNotional, wantNotional) {
		return fmt.Errorf("totals differ: delivered %d, counted %.0f", delivered, got)
	}
	return nil
}

// exporterEnv is added to the environment of every exporter started
// (--exporter-env).
var exporterEnv []string

// exporterProc is one running exporter process.
type exporterProc struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{} // closed once the process has exited
}

// startExporter starts the exporter with the config at cfgPath on a free
// loopback port and returns once /metrics has answered 200, with the time
// from just before starting the process to that answer (body read),
// polled every millisecond.
func startExporter(bin, cfgPath string) (*exporterProc, time.Duration, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, 0, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--web.listen-address="+addr, "--log.level=error")
	cmd.Stderr = os.Stderr
	if len(exporterEnv) > 0 {
		cmd.Env = append(os.Environ(), exporterEnv...)
	}
	// No connection reuse: every poll is a fresh connect, as a first scrape is.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	p := &exporterProc{cmd: cmd, addr: addr, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		resp, err := client.Get("http://" + addr + "/metrics")
		if err == nil {
			_, _ = bufio.NewReader(resp.Body).WriteTo(discard{})
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, time.Since(t0), nil
			}
		}
		select {
		case <-p.exited:
			return nil, 0, fmt.Errorf("exporter exited before /metrics answered")
		case <-deadline.C:
			p.stop()
			return nil, 0, fmt.Errorf("/metrics did not answer 200 within 10s of start")
		case <-time.After(time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits for the exit, killing the process after 5 s.
func (p *exporterProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// median of sorted durations.
func median(d []time.Duration) time.Duration {
	if len(d)%2 == 1 {
		return d[len(d)/2]
	}
	return (d[len(d)/2-1] + d[len(d)/2]) / 2
}

// goroutines reads go_goroutines from the exporter's own metrics.
func goroutines(addr string) float64 { return ownMetric(addr, "go_goroutines") }

// ownMetric reads one unlabelled sample of the exporter's own metrics
// (also a summary's _count or _sum), -1 if it cannot. It scans the text
// rather than parsing it, so it is cheap and sees summaries too.
func ownMetric(addr, name string) float64 {
	v, err := ownMetrics(addr, name)
	if err != nil {
		return -1
	}
	return v[0]
}

// ownMetrics reads unlabelled samples of the exporter's own metrics in
// one scrape; a sample not found is -1.
func ownMetrics(addr string, names ...string) ([]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	out := make([]float64, len(names))
	for i := range out {
		out[i] = -1
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for i, n := range names {
			if v, ok := strings.CutPrefix(line, n+" "); ok {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					out[i] = f
				}
			}
		}
	}
	return out, sc.Err()
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func scrapeOnce(addr string) (collectortest.Samples, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	return collectortest.FromText(resp.Body)
}

// procCPU returns utime+stime of pid in clock ticks.
func procCPU(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the ")" of the command name; utime and stime are 14 and 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat")
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st, nil
}

// procRSS returns VmRSS of pid in KiB.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				return strconv.ParseInt(f[1], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS")
}

// waitCounted waits until the exporter has counted n liquidations, or
// until timeout.
func waitCounted(addr string, n int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if s, err := scrapeOnce(addr); err == nil && s.Sum("crypto_liquidations_total") >= float64(n) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
