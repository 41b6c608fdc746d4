package exchanges

import "testing"

func TestDecodeEnvelope(t *testing.T) {
	for _, tc := range []struct {
		in                          string
		kind                        EnvelopeKind
		err                         bool
		event, code, msg, arg, data string
	}{
		{in: "pong", kind: EnvelopePong},
		{in: " ping\n", kind: EnvelopePing},
		{in: `{"event":"subscribe","arg":{"channel":"liquidation-orders","instType":"SWAP"},"connId":"a4d3ae55"}`,
			kind: EnvelopeEvent, event: "subscribe", arg: `{"channel":"liquidation-orders","instType":"SWAP"}`},
		{in: `{"event":"error","code":"60012","msg":"Invalid request: {\"op\": \"subscribe\"}","connId":"a4d3ae55"}`,
			kind: EnvelopeEvent, event: "error", code: "60012", msg: `Invalid request: {\"op\": \"subscribe\"}`}, // escapes kept (for logs)
		{in: `{"arg":{"instType":"usdt-futures","topic":"liquidation"},"data":[{"symbol":"BTCUSDT"}]}`,
			kind: EnvelopePush, arg: `{"instType":"usdt-futures","topic":"liquidation"}`, data: `[{"symbol":"BTCUSDT"}]`},
		{in: `{"data":[]}`, kind: EnvelopePush, data: `[]`}, // no arg: the venue decides
		{in: `{"event":1}`, err: true},
		{in: `{"arg":{"channel":"x"}}`, err: true}, // neither data nor event
		{in: `{"arg":`, err: true},
		{in: `[1,2]`, err: true},
		{in: `pongg`, err: true},
	} {
		e, err := DecodeEnvelope([]byte(tc.in))
		if (err != nil) != tc.err {
			t.Errorf("%s: err %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		if e.Kind != tc.kind || string(e.Event) != tc.event || string(e.Code) != tc.code || string(e.Msg) != tc.msg ||
			string(e.Arg) != tc.arg || string(e.Data) != tc.data {
			t.Errorf("%s: got %+v", tc.in, e)
		}
	}
}
