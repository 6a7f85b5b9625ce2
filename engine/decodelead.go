package engine

import "github.com/plumbhq/plumb/internal/leadjson"

// DecodeLead decodes one lead from JSON: an object, with white space and a
// UTF-8 byte-order mark around it allowed and nothing else. Numbers stay
// exact (json.Number; Run normalises them, and integers beyond 2^53 are
// sent digit for digit). Errors say what is wrong: "invalid JSON: …",
// "a lead must be a JSON object, got an array", "more than one JSON value".
// It gives what encoding/json's Decoder with UseNumber gives, at a fraction
// of the cost; the lead's strings are views of one copy of b. plumb run,
// plumb serve, webhook receivers and sources read leads this way.
func DecodeLead(b []byte) (map[string]any, error) { return leadjson.Decode(b) }
