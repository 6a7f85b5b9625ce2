package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// DedupeKeyLen is the length of every [DedupeKey] result.
const DedupeKeyLen = 64

// DedupeKey turns a raw key (usually [Event.Key]) into a fixed-length id
// suitable as a NATS message id (Nats-Msg-Id) or a KV key: 64 lower-case hex
// characters, the SHA-256 of scope and key. scope keeps hooks apart — use the
// hook's name, so the same event id from two providers never collides. The
// caller should not dedupe when key is "" (Event.Key found nothing to key
// on): every such delivery would share one id.
func DedupeKey(scope, key string) string {
	h := sha256.New()
	h.Write([]byte("plumb webhook dedupe v1\x00"))
	h.Write([]byte(strconv.Itoa(len(scope))))
	h.Write([]byte{':'})
	h.Write([]byte(scope))
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))
}
