package exchanges

import (
	"errors"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges/jsonx"
)

// EnvelopeKind tells what an OKX-style WebSocket frame is.
type EnvelopeKind uint8

const (
	EnvelopePush  EnvelopeKind = iota // {"arg":{...},"data":[...]}
	EnvelopeEvent                     // {"event":"subscribe"|"error"|...,"arg":{...},"code":"..","msg":".."}
	EnvelopePong                      // the text "pong"
	EnvelopePing                      // the text "ping"
)

// Envelope is the outer shape of the WebSocket frames of OKX and Bitget
// (v2 and v3 alike): the text "ping" or "pong", an event, or a push of
// data under an arg naming the channel. Its byte slices alias the frame.
type Envelope struct {
	Kind  EnvelopeKind
	Event []byte // an event's name
	Code  []byte // an event's code without quotes, escapes kept (nil when absent)
	Msg   []byte // an event's message without quotes, escapes kept (nil when absent)
	Arg   []byte // the arg object as sent, nil when absent
	Data  []byte // a push's data value as sent
}

var (
	// ErrBadEvent is a frame whose event is not a plain string.
	ErrBadEvent = errors.New("event is not a plain string")
	// ErrNotPushOrEvent is an object with neither an event nor data.
	ErrNotPushOrEvent = errors.New("neither a push (arg and data) nor an event")
)

// DecodeEnvelope splits a frame into its parts, matching keys exactly. It
// does not look into arg or data: their shapes are the venue's (a push's
// Arg may be nil; the caller says whether that is an error).
func DecodeEnvelope(data []byte) (Envelope, error) {
	switch string(jsonx.TrimSpace(data)) {
	case "pong":
		return Envelope{Kind: EnvelopePong}, nil
	case "ping":
		return Envelope{Kind: EnvelopePing}, nil
	}
	var e Envelope
	var event, code, msg []byte
	err := jsonx.ObjectEach(data, func(k, v []byte) bool {
		switch string(k) {
		case "event":
			event = v
		case "arg":
			e.Arg = v
		case "data":
			e.Data = v
		case "code":
			code = v
		case "msg":
			msg = v
		}
		return true
	})
	switch {
	case err != nil:
		return Envelope{}, err
	case event != nil:
		var ok bool
		if e.Event, ok = jsonx.String(event); !ok {
			return Envelope{}, ErrBadEvent
		}
		e.Kind, e.Code, e.Msg = EnvelopeEvent, jsonx.Unquote(code), jsonx.Unquote(msg)
		return e, nil
	case e.Data == nil:
		return Envelope{}, ErrNotPushOrEvent
	}
	e.Kind = EnvelopePush
	return e, nil
}
