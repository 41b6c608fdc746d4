package exchangetest

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fearGreedGet fetches the fake and returns the status, Retry-After header
// and body.
func fearGreedGet(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
}

// fearGreedDecode decodes a body into generic JSON, keeping the field types
// visible (strings stay strings).
func fearGreedDecode(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	return m
}

func TestFearGreedLimit(t *testing.T) {
	f := NewFearGreed()
	defer f.Close()
	if !strings.HasPrefix(f.URL(), "http://127.0.0.1:") || !strings.HasSuffix(f.URL(), "/fng/") {
		t.Fatalf("URL() = %q, want http://127.0.0.1:PORT/fng/", f.URL())
	}
	now := time.Now().UTC().Truncate(24 * time.Hour)
	f.Push(23, "Extreme Fear", now.Add(-48*time.Hour))
	f.Push(54, "Neutral", now.Add(-24*time.Hour))
	f.Push(72, "Greed", now)

	for _, tc := range []struct {
		query      string
		wantValues []string
	}{
		{"", []string{"72"}},
		{"?limit=1", []string{"72"}},
		{"?limit=2", []string{"72", "54"}},
		{"?limit=0", []string{"72", "54", "23"}},
		{"?limit=10&format=json", []string{"72", "54", "23"}},
	} {
		status, _, body := fearGreedGet(t, f.URL()+tc.query)
		if status != http.StatusOK {
			t.Fatalf("%s: status %d", tc.query, status)
		}
		m := fearGreedDecode(t, body)
		if m["name"] != "Fear and Greed Index" {
			t.Errorf("%s: name %v", tc.query, m["name"])
		}
		md, ok := m["metadata"].(map[string]any)
		if e, present := md["error"]; !ok || !present || e != nil {
			t.Errorf("%s: metadata %v, want {error: null}", tc.query, m["metadata"])
		}
		data, _ := m["data"].([]any)
		if len(data) != len(tc.wantValues) {
			t.Fatalf("%s: %d entries, want %d:\n%s", tc.query, len(data), len(tc.wantValues), body)
		}
		limitOne := len(tc.wantValues) == 1
		for i, d := range data {
			e := d.(map[string]any)
			if e["value"] != tc.wantValues[i] {
				t.Errorf("%s: data[%d].value = %#v, want %q", tc.query, i, e["value"], tc.wantValues[i])
			}
			if _, ok := e["timestamp"].(string); !ok {
				t.Errorf("%s: data[%d].timestamp = %#v, want a string", tc.query, i, e["timestamp"])
			}
			if _, ok := e["value_classification"].(string); !ok {
				t.Errorf("%s: data[%d].value_classification = %#v, want a string", tc.query, i, e["value_classification"])
			}
			tu, has := e["time_until_update"]
			if has != limitOne {
				t.Errorf("%s: data[%d] has time_until_update: %v, want %v", tc.query, i, has, limitOne)
			}
			if has {
				if _, ok := tu.(string); !ok {
					t.Errorf("%s: time_until_update = %#v, want a string", tc.query, tu)
				}
			}
		}
	}
	first := fearGreedDecode(t, func() string { _, _, b := fearGreedGet(t, f.URL()); return b }())
	e := first["data"].([]any)[0].(map[string]any)
	if e["timestamp"] != strconv.FormatInt(now.Unix(), 10) || e["value_classification"] != "Greed" {
		t.Errorf("newest entry = %v", e)
	}

	status, _, body := fearGreedGet(t, f.URL()+"?limit=-1")
	if md := fearGreedDecode(t, body)["metadata"].(map[string]any); status != http.StatusOK || md["error"] == nil {
		t.Errorf("limit=-1: status %d, body %s; want metadata.error set", status, body)
	}
	if status, _, _ := fearGreedGet(t, strings.TrimSuffix(f.URL(), "/fng/")+"/other"); status != http.StatusNotFound {
		t.Errorf("other path: status %d, want 404", status)
	}
}

func TestFearGreedFailNext(t *testing.T) {
	f := NewFearGreed()
	defer f.Close()
	f.Push(54, "Neutral", time.Unix(1713628800, 0))

	f.FailNext(2, http.StatusTooManyRequests, 7, "")
	f.FailNext(1, http.StatusInternalServerError, 0, "boom")
	f.SetRawBody(`{"data":[`)
	f.FailNext(0, http.StatusBadGateway, 0, "") // n = 0 queues nothing

	for i := range 2 {
		status, retry, body := fearGreedGet(t, f.URL())
		if status != http.StatusTooManyRequests || retry != "7" || !strings.Contains(body, "Too Many Requests") {
			t.Errorf("request %d: status %d, Retry-After %q, body %q; want 429, 7, generic body", i, status, retry, body)
		}
	}
	if status, retry, body := fearGreedGet(t, f.URL()); status != http.StatusInternalServerError || retry != "" || body != "boom" {
		t.Errorf("status %d, Retry-After %q, body %q; want 500, none, boom", status, retry, body)
	}
	if status, _, body := fearGreedGet(t, f.URL()); status != http.StatusOK || body != `{"data":[` {
		t.Errorf("raw body: status %d, body %q", status, body)
	}
	status, retry, body := fearGreedGet(t, f.URL()+"?limit=1")
	if status != http.StatusOK || retry != "" {
		t.Fatalf("back to normal: status %d, Retry-After %q", status, retry)
	}
	if d := fearGreedDecode(t, body)["data"].([]any); len(d) != 1 || d[0].(map[string]any)["value"] != "54" {
		t.Errorf("back to normal: body %s", body)
	}
	if got := f.Requests(); got != 5 {
		t.Errorf("Requests() = %d, want 5", got)
	}
}

func TestFearGreedEmptyHistory(t *testing.T) {
	f := NewFearGreed()
	defer f.Close()
	status, _, body := fearGreedGet(t, f.URL())
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	if d, ok := fearGreedDecode(t, body)["data"].([]any); !ok || len(d) != 0 {
		t.Errorf("data = %v, want []", fearGreedDecode(t, body)["data"])
	}
}
