package exchangetest

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

func hyperliquidNew(t *testing.T) *Hyperliquid {
	t.Helper()
	h := NewHyperliquid()
	h.SetAssets([]HyperliquidAsset{
		{Name: "BTC", SzDecimals: 5, MaxLeverage: 40, Funding: 0.0000125, OpenInterest: 25123.45678, PrevDayPx: 96011,
			DayNtlVlm: 2.345678901e9, Premium: 0.0001, OraclePx: 96500, MarkPx: 96512, MidPx: 96511.5,
			ImpactPxs: [2]float64{96510, 96513}, DayBaseVlm: 24321.123},
		{Name: "LUNA", SzDecimals: 1, MaxLeverage: 3, IsDelisted: true, PrevDayPx: 0.3765, Premium: math.NaN(),
			OraclePx: 0.3765, MarkPx: 0.3765, MidPx: math.NaN()},
		{Name: "kPEPE", MaxLeverage: 10, OnlyIsolated: true, Funding: -0.00002, OpenInterest: 3456789012,
			DayNtlVlm: 45678901.2, MarkPx: 0.012345, MidPx: 0.012344, DayBaseVlm: 3.7e9},
	})
	t.Cleanup(h.Close)
	return h
}

// hyperliquidPost sends body to path with the given content type.
func hyperliquidPost(t *testing.T, u, contentType, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func hyperliquidInfo(t *testing.T, h *Hyperliquid, body string) (int, http.Header, []byte) {
	t.Helper()
	return hyperliquidPost(t, h.URL()+"/info", "application/json", body)
}

const metaAndAssetCtxsBody = `{"type":"metaAndAssetCtxs"}`

func TestHyperliquidMetaAndAssetCtxsShape(t *testing.T) {
	h := hyperliquidNew(t)
	status, hdr, body := hyperliquidInfo(t, h, metaAndAssetCtxsBody)
	if status != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q: %s", status, hdr.Get("Content-Type"), body)
	}
	var top []json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || len(top) != 2 {
		t.Fatalf("top level %v (%d elements): %s", err, len(top), body)
	}
	var meta map[string][]map[string]any
	if err := json.Unmarshal(top[0], &meta); err != nil {
		t.Fatal(err)
	}
	var ctxs []map[string]any
	if err := json.Unmarshal(top[1], &ctxs); err != nil {
		t.Fatal(err)
	}
	uni := meta["universe"]
	if len(uni) != 3 || len(ctxs) != 3 || len(meta) != 1 {
		t.Fatalf("meta %v, %d contexts", meta, len(ctxs))
	}
	// Universe entries: integers and booleans as JSON types; isDelisted
	// only on delisted perps.
	for i, wantName := range []string{"BTC", "LUNA", "kPEPE"} {
		u := uni[i]
		if u["name"] != wantName {
			t.Errorf("universe[%d] name %v", i, u["name"])
		}
		for _, k := range []string{"szDecimals", "maxLeverage"} {
			if _, ok := u[k].(float64); !ok {
				t.Errorf("universe[%d].%s = %#v, want a number", i, k, u[k])
			}
		}
		if _, ok := u["onlyIsolated"].(bool); !ok {
			t.Errorf("universe[%d].onlyIsolated = %#v", i, u["onlyIsolated"])
		}
		_, has := u["isDelisted"]
		if has != (wantName == "LUNA") || (has && u["isDelisted"] != true) {
			t.Errorf("universe[%d].isDelisted = %#v (present %v)", i, u["isDelisted"], has)
		}
	}
	if uni[0]["szDecimals"] != 5.0 || uni[0]["maxLeverage"] != 40.0 || uni[2]["onlyIsolated"] != true {
		t.Errorf("universe values %v", uni)
	}
	// Contexts: every number a decimal string, index-aligned.
	keys := []string{"funding", "openInterest", "prevDayPx", "dayNtlVlm", "premium", "oraclePx", "markPx", "midPx", "impactPxs", "dayBaseVlm"}
	for i, c := range ctxs {
		if len(c) != len(keys) {
			t.Errorf("context %d has keys %v", i, c)
		}
		for _, k := range keys {
			if _, ok := c[k]; !ok {
				t.Errorf("context %d without %s", i, k)
			}
		}
	}
	btc := ctxs[0]
	for k, want := range map[string]string{"funding": "0.0000125", "openInterest": "25123.45678", "dayNtlVlm": "2345678901",
		"markPx": "96512", "midPx": "96511.5", "premium": "0.0001", "dayBaseVlm": "24321.123"} {
		if btc[k] != want {
			t.Errorf("BTC %s = %#v, want %q", k, btc[k], want)
		}
	}
	if px, ok := btc["impactPxs"].([]any); !ok || len(px) != 2 || px[0] != "96510" || px[1] != "96513" {
		t.Errorf("BTC impactPxs %#v", btc["impactPxs"])
	}
	luna := ctxs[1]
	if luna["premium"] != nil || luna["midPx"] != nil || luna["impactPxs"] != nil || luna["markPx"] != "0.3765" || luna["funding"] != "0" {
		t.Errorf("delisted context %v", luna)
	}
	if ctxs[2]["funding"] != "-0.00002" || ctxs[2]["openInterest"] != "3456789012" {
		t.Errorf("kPEPE context %v", ctxs[2])
	}
}

func TestHyperliquidRejectsOtherRequests(t *testing.T) {
	h := hyperliquidNew(t)
	for _, tc := range []struct {
		name, path, contentType, body string
		status                        int
	}{
		// The reference: info types such as liquidations are answered 422.
		{"liquidations", "/info", "application/json", `{"type":"liquidations"}`, 422},
		{"unknown type", "/info", "application/json", `{"type":"nope"}`, 422},
		{"no type", "/info", "application/json", `{}`, 422},
		{"type not a string", "/info", "application/json", `{"type":1}`, 422},
		{"not JSON", "/info", "application/json", `{"type":`, 400},
		{"no content type", "/info", "", metaAndAssetCtxsBody, 415},
		{"wrong path", "/exchange", "application/json", metaAndAssetCtxsBody, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := hyperliquidPost(t, h.URL()+tc.path, tc.contentType, tc.body)
			if status != tc.status {
				t.Errorf("status %d, want %d: %s", status, tc.status, body)
			}
		})
	}
	resp, err := http.Get(h.URL() + "/info")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /info: %d", resp.StatusCode)
	}
	if got := h.Requests("liquidations"); got != 1 {
		t.Errorf("Requests(liquidations) = %d", got)
	}
	if got := h.Requests(""); got != 8 {
		t.Errorf("Requests(\"\") = %d, want 8", got)
	}
	if got := h.Requests(HyperliquidMetaAndAssetCtxs); got != 0 {
		t.Errorf("Requests(metaAndAssetCtxs) = %d (rejected requests counted under the type)", got)
	}
}

func TestHyperliquidFailNext(t *testing.T) {
	h := hyperliquidNew(t)
	h.FailNext(HyperliquidMetaAndAssetCtxs, 2, 429, 3, "")
	h.FailNext("", 1, 500, 0, "<html>oops</html>")
	h.FailNext(HyperliquidMetaAndAssetCtxs, 1, 200, 0, `[{"universe":[]},[]]`)

	// Type-specific faults come first, in order; then the any-type one.
	for i, want := range []struct {
		status     int
		retryAfter string
		body       string
	}{
		{429, "3", "429 Too Many Requests"},
		{429, "3", "429 Too Many Requests"},
		{200, "", `[{"universe":[]},[]]`},
		{500, "", "<html>oops</html>"},
	} {
		status, hdr, body := hyperliquidInfo(t, h, metaAndAssetCtxsBody)
		if status != want.status || hdr.Get("Retry-After") != want.retryAfter || string(body) != want.body {
			t.Errorf("answer %d: %d Retry-After %q %s", i, status, hdr.Get("Retry-After"), body)
		}
	}
	if status, _, _ := hyperliquidInfo(t, h, metaAndAssetCtxsBody); status != 200 {
		t.Errorf("after the faults: %d", status)
	}
	// An any-type fault also answers other types.
	h.FailNext("", 1, 503, 0, "")
	if status, _, _ := hyperliquidInfo(t, h, `{"type":"liquidations"}`); status != 503 {
		t.Errorf("any-type fault on another type: %d", status)
	}
	if got := h.Requests(HyperliquidMetaAndAssetCtxs); got != 5 {
		t.Errorf("Requests = %d, want 5", got)
	}
}

func TestHyperliquidContextSkewAndUpdate(t *testing.T) {
	h := hyperliquidNew(t)
	lengths := func() (int, int) {
		_, _, body := hyperliquidInfo(t, h, metaAndAssetCtxsBody)
		var top []json.RawMessage
		var meta struct{ Universe []any }
		var ctxs []any
		if json.Unmarshal(body, &top) != nil || json.Unmarshal(top[0], &meta) != nil || json.Unmarshal(top[1], &ctxs) != nil {
			t.Fatalf("bad body %s", body)
		}
		return len(meta.Universe), len(ctxs)
	}
	h.SetContextSkew(2)
	if u, c := lengths(); u != 3 || c != 5 {
		t.Errorf("skew +2: %d/%d", u, c)
	}
	h.SetContextSkew(-1)
	if u, c := lengths(); u != 3 || c != 2 {
		t.Errorf("skew -1: %d/%d", u, c)
	}
	h.SetContextSkew(-10)
	if u, c := lengths(); u != 3 || c != 0 {
		t.Errorf("skew -10: %d/%d", u, c)
	}
	h.SetContextSkew(0)
	h.UpdateAsset("SOL", func(a *HyperliquidAsset) { a.MarkPx = 150 })
	h.UpdateAsset("BTC", func(a *HyperliquidAsset) { a.IsDelisted = true })
	if u, c := lengths(); u != 4 || c != 4 {
		t.Errorf("after adding SOL: %d/%d", u, c)
	}
	assets := h.Assets()
	if len(assets) != 4 || assets[3].Name != "SOL" || assets[3].MarkPx != 150 || !assets[0].IsDelisted {
		t.Errorf("assets %+v", assets)
	}
	// Assets returns a copy.
	assets[0].Name = "X"
	if h.Assets()[0].Name != "BTC" {
		t.Error("Assets shares state")
	}
}

func TestHyperliquidWeightLimit(t *testing.T) {
	h := hyperliquidNew(t)
	h.SetWeightLimit(2*HyperliquidInfoWeight, 300*time.Millisecond)
	for i, want := range []int{200, 200, 429, 429} {
		if status, hdr, _ := hyperliquidInfo(t, h, metaAndAssetCtxsBody); status != want || hdr.Get("Retry-After") != "" {
			t.Errorf("request %d: %d (Retry-After %q), want %d", i, status, hdr.Get("Retry-After"), want)
		}
	}
	time.Sleep(350 * time.Millisecond)
	if status, _, _ := hyperliquidInfo(t, h, metaAndAssetCtxsBody); status != 200 {
		t.Errorf("after the window: %d", status)
	}
	// The documented default: 1200 per minute, 20 per request = 60 requests.
	d := NewHyperliquid()
	defer d.Close()
	d.SetAssets([]HyperliquidAsset{{Name: "BTC", MarkPx: 1}})
	for i := range 61 {
		status, _, _ := hyperliquidInfo(t, d, metaAndAssetCtxsBody)
		if want := map[bool]int{true: 429, false: 200}[i == 60]; status != want {
			t.Fatalf("request %d: %d, want %d", i, status, want)
		}
	}
}

func TestHyperliquidLatencyAndClose(t *testing.T) {
	h := hyperliquidNew(t)
	h.SetLatency(HyperliquidMetaAndAssetCtxs, time.Hour)
	client := &http.Client{Timeout: 100 * time.Millisecond}
	req, _ := http.NewRequest(http.MethodPost, h.URL()+"/info", strings.NewReader(metaAndAssetCtxsBody))
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("answered despite the latency")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("client gave up after %v", d)
	}
	// Other types are not delayed.
	if status, _, _ := hyperliquidInfo(t, h, `{"type":"liquidations"}`); status != 422 {
		t.Errorf("status %d", status)
	}
	// A delayed request in flight does not hold up Close.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.URL()+"/info", strings.NewReader(metaAndAssetCtxsBody))
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(2 * time.Second)
	for h.Requests(HyperliquidMetaAndAssetCtxs) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	start = time.Now()
	h.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	h.Close() // idempotent
}
