package webhook

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
)

// encoding is how a signature is written in a header.
type encoding uint8

const (
	encHex       encoding = iota // lower-case hex out; either case in
	encBase64                    // standard alphabet, padded
	encBase64URL                 // URL alphabet, padded
)

// String names the encoding as Config.Encoding spells it.
func (e encoding) String() string {
	switch e {
	case encBase64:
		return "base64"
	case encBase64URL:
		return "base64url"
	default:
		return "hex"
	}
}

// encode writes sig in e.
func (e encoding) encode(sig []byte) string {
	switch e {
	case encBase64:
		return base64.StdEncoding.EncodeToString(sig)
	case encBase64URL:
		return base64.URLEncoding.EncodeToString(sig)
	default:
		return hex.EncodeToString(sig)
	}
}

// decode reads a signature written in e; ok is false for anything else,
// including an empty string.
func (e encoding) decode(s string) (sig []byte, ok bool) {
	if s == "" {
		return nil, false
	}
	var err error
	switch e {
	case encBase64:
		sig, err = base64.StdEncoding.Strict().DecodeString(s)
	case encBase64URL:
		sig, err = base64.URLEncoding.Strict().DecodeString(s)
	default:
		sig, err = hex.DecodeString(s)
	}
	return sig, err == nil
}

// segKind is one piece of the signed content.
type segKind uint8

const (
	segLit       segKind = iota // literal text
	segBody                     // the raw body
	segTimestamp                // the timestamp as sent
	segID                       // the event id as sent
)

// segment is a compiled piece of Config.Signed.
type segment struct {
	kind segKind
	lit  string
}

// compileSigned parses the placeholder syntax of Config.Signed: {body},
// {timestamp} and {id}, with "{{" for a literal "{". It requires {body} and
// literal text between any two placeholders, so that the boundaries of the
// signed parts cannot shift.
func compileSigned(s string) ([]segment, error) {
	var segs []segment
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			segs = append(segs, segment{lit: lit.String()})
			lit.Reset()
		}
	}
	hasBody := false
	for len(s) > 0 {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			lit.WriteString(s)
			break
		}
		lit.WriteString(s[:i])
		s = s[i:]
		if strings.HasPrefix(s, "{{") {
			lit.WriteByte('{')
			s = s[2:]
			continue
		}
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return nil, errors.New("unclosed {")
		}
		var k segKind
		switch name := s[1:end]; name {
		case "body":
			k, hasBody = segBody, true
		case "timestamp":
			k = segTimestamp
		case "id":
			k = segID
		default:
			return nil, errors.New("unknown placeholder {" + name + "}; use {body}, {timestamp} or {id} (and {{ for a literal {)")
		}
		flush()
		if n := len(segs); n > 0 && segs[n-1].kind != segLit {
			return nil, errors.New("two placeholders in a row; separate them with literal text such as \".\"")
		}
		segs = append(segs, segment{kind: k})
		s = s[end+1:]
	}
	flush()
	if !hasBody {
		return nil, errors.New("the signed content must include {body}")
	}
	return segs, nil
}
