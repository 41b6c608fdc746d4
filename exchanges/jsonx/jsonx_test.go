package jsonx

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestObjectEachExactKeys(t *testing.T) {
	in := []byte(` {"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL","ap":"9910"} , "x":[1,{"a":null},"s\"q"],"t":true} `)
	got := map[string]string{}
	if err := ObjectEach(in, func(k, v []byte) bool { got[string(k)] = string(v); return true }); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"e": `"forceOrder"`, "E": "1568014460893", "o": `{"s":"BTCUSDT","S":"SELL","ap":"9910"}`,
		"x": `[1,{"a":null},"s\"q"]`, "t": "true"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("key %q: got %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d keys, want %d: %v", len(got), len(want), got)
	}
}

func TestSyntaxErrors(t *testing.T) {
	for _, in := range []string{``, `[]`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1} x`, `{"a":"x}`, `{"a":[1,2}`,
		`{"a":tru}`, `{"a":nul}`, `{a:1}`, `{"a":1 "b":2}`, "{\"a\":\"\x01\"}"} {
		err := ObjectEach([]byte(in), func(k, v []byte) bool { return true })
		if err == nil {
			t.Errorf("%q: expected an error", in)
		}
		if Valid([]byte(in)) && json.Valid([]byte(in)) == false {
			t.Errorf("%q: Valid disagrees with encoding/json", in)
		}
	}
}

func TestFloat(t *testing.T) {
	for in, want := range map[string]float64{`"0.014"`: 0.014, `9910`: 9910, `"-1e3"`: -1000, `0`: 0} {
		got, err := Float([]byte(in))
		if err != nil || got != want {
			t.Errorf("Float(%s) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{`"NaN"`, `"Inf"`, `"+Inf"`, `""`, `"abc"`, `"1_000"`, `"0x10"`, `1e999`, `null`, `true`, `"1.2.3"`} {
		if got, err := Float([]byte(in)); err == nil {
			t.Errorf("Float(%s) = %v, want an error", in, got)
		}
	}
}

func TestString(t *testing.T) {
	if s, ok := String([]byte(`"BTCUSDT"`)); !ok || string(s) != "BTCUSDT" {
		t.Errorf("got %q %v", s, ok)
	}
	for _, in := range []string{`"a\"b"`, `1`, `"`, `null`} {
		if _, ok := String([]byte(in)); ok {
			t.Errorf("String(%s) should fail", in)
		}
	}
}

func TestArrayEach(t *testing.T) {
	var n int
	if err := ArrayEach([]byte(`[ {"a":1}, 2 ,"x"]`), func(v []byte) bool { n++; return true }); err != nil || n != 3 {
		t.Errorf("n=%d err=%v", n, err)
	}
	if err := ArrayEach([]byte(`[1,]`), func(v []byte) bool { return true }); err == nil {
		t.Error("trailing comma accepted")
	}
}

func TestDepthLimit(t *testing.T) {
	deep := make([]byte, 0, 2*(MaxDepth+10)+10)
	deep = append(deep, `{"a":`...)
	for range MaxDepth + 10 {
		deep = append(deep, '[')
	}
	for range MaxDepth + 10 {
		deep = append(deep, ']')
	}
	deep = append(deep, '}')
	if err := ObjectEach(deep, func(k, v []byte) bool { return true }); err == nil {
		t.Error("expected depth error")
	}
}

// FuzzValid checks that the walker never panics and agrees with
// encoding/json on what is valid (jsonx accepts a superset of number
// spellings, so only "jsonx rejects what encoding/json accepts" is a bug).
func FuzzValid(f *testing.F) {
	for _, s := range []string{`{"e":"forceOrder","o":{"s":"BTCUSDT"}}`, `[1,2,{"a":[true,false,null]}]`, `"x"`, `{}`, `{"a":"\u00e9"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ok := Valid(b)
		if json.Valid(b) && !ok {
			// Depth beyond MaxDepth is rejected on purpose.
			d, maxd := 0, 0
			for _, c := range b {
				switch c {
				case '[', '{':
					d++
					maxd = max(maxd, d)
				case ']', '}':
					d--
				}
			}
			if maxd <= MaxDepth {
				t.Fatalf("rejected valid JSON %q", b)
			}
		}
		_ = ObjectEach(b, func(k, v []byte) bool { _, _ = Float(v); _, _ = String(v); return true })
	})
}

func TestUnquote(t *testing.T) {
	for in, want := range map[string]string{`"abc"`: "abc", `7`: "7", `""`: "", `"`: `"`, `"a\"b"`: `a\"b`} {
		if got := string(Unquote([]byte(in))); got != want {
			t.Errorf("Unquote(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestElements(t *testing.T) {
	for _, tc := range []struct {
		in    string
		end   int
		elems []string
	}{
		{`[]`, 2, nil},
		{` [ 1 , "a" ,{"b":[2]}] tail`, 22, []string{"1", `"a"`, `{"b":[2]}`}},
		{`[1,]`, 0, []string{"1"}},
		{`[1 2]`, 0, []string{"1"}},
		{`[1`, 0, []string{"1"}},
		{`{"a":1}`, 0, nil},
		{``, 0, nil},
	} {
		var got []string
		end := Elements([]byte(tc.in), func(rest []byte) int {
			n, err := Skip(rest)
			if err != nil {
				return 0
			}
			got = append(got, string(rest[:n]))
			return n
		})
		if end != tc.end || strings.Join(got, "|") != strings.Join(tc.elems, "|") {
			t.Errorf("Elements(%q) = %d %q, want %d %q", tc.in, end, got, tc.end, tc.elems)
		}
	}
	stops := 0
	if end := Elements([]byte(`[1,2,3]`), func([]byte) int { stops++; return 0 }); end != 0 || stops != 1 {
		t.Errorf("a callback returning 0 did not stop the walk: end %d after %d calls", end, stops)
	}
}

func TestScalar(t *testing.T) {
	for in, want := range map[string]int{
		`"ab",`: 4, `12.5}`: 4, `true]`: 4, `null`: 4,
		`{"a":1}`: -1, `[1]`: -1, ``: -1, `"unterminated`: -1, `nul`: -1,
	} {
		if got := Scalar([]byte(in)); got != want {
			t.Errorf("Scalar(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestScalarMembers(t *testing.T) {
	var got []string
	end, err := ScalarMembers([]byte(`{"a":1,"b":"x","c":null} tail`), func(k, v []byte) { got = append(got, string(k)+"="+string(v)) })
	if err != nil || end != 24 || strings.Join(got, ",") != `a=1,b="x",c=null` {
		t.Errorf("got %v, end %d, err %v", got, end, err)
	}
	got = nil
	if _, err := ScalarMembers([]byte(`{"a":1,"b":{"c":2},"d":3}`), func(k, v []byte) { got = append(got, string(k)) }); !errors.Is(err, ErrStopped) || len(got) != 1 {
		t.Errorf("a nested member: err %v after %v, want ErrStopped after [a]", err, got)
	}
}
