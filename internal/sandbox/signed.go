package sandbox

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ---- hmac signing (seed: Custom Authentication / HMAC Signature) ----

// HMACSecret is the shared secret /signed/leads verifies signatures with.
const HMACSecret = "demo-hmac-secret"

// MaxSkew is how far X-Timestamp may be from the sandbox's clock.
const MaxSkew = 5 * time.Minute

// Sign returns the signature /signed/leads expects: hex HMAC-SHA256 of
// method + escaped path + timestamp + body with secret.
func Sign(secret, method, path, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	io.WriteString(mac, method+path+timestamp)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// signedLeads verifies X-Timestamp and X-Signature before it reads the lead.
func signedLeads(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		jsonError(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	ts, sig := r.Header.Get("X-Timestamp"), r.Header.Get("X-Signature")
	if ts == "" || sig == "" {
		jsonError(w, http.StatusUnauthorized, "X-Timestamp and X-Signature are required")
		return
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		jsonError(w, http.StatusUnauthorized, "X-Timestamp must be Unix seconds, got %q", ts)
		return
	}
	if skew := time.Since(time.Unix(secs, 0)); skew > MaxSkew || skew < -MaxSkew {
		jsonError(w, http.StatusUnauthorized, "stale request: X-Timestamp is %s away from now (at most %s)", skew.Round(time.Second), MaxSkew)
		return
	}
	want := Sign(HMACSecret, r.Method, r.URL.EscapedPath(), ts, body)
	if !hmac.Equal([]byte(strings.ToLower(sig)), []byte(want)) {
		jsonError(w, http.StatusUnauthorized, "bad signature")
		return
	}
	if !mediaType(r, "application/json") {
		jsonError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return
	}
	var in struct {
		Email   string  `json:"email"`
		Phone   string  `json:"phone"`
		Product string  `json:"product"`
		Amount  float64 `json:"amount"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		jsonError(w, http.StatusBadRequest, "invalid JSON body: %v", err)
		return
	}
	if in.Email == "" || in.Product == "" {
		jsonError(w, http.StatusBadRequest, "email and product are required")
		return
	}
	if !validEmail(in.Email) {
		jsonError(w, http.StatusUnprocessableEntity, "%s is not a deliverable address", in.Email)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": "H-" + hash(in.Email, in.Product), "accepted": true, "price": float64(number(in.Email+in.Product, 20, 60)),
	})
}

// ---- token rotation (seed: Custom Authentication / Custom Token) ----

// The rotation tokens: RevokedToken was retired by the partner and is
// answered with a 401; ActiveToken works.
const (
	RevokedToken = "demo-token-a"
	ActiveToken  = "demo-token-b"
)

// rotateLeads needs X-Auth-Token: ActiveToken and X-Auth-Version: 2.0.
func rotateLeads(w http.ResponseWriter, r *http.Request) {
	switch r.Header.Get("X-Auth-Token") {
	case ActiveToken:
	case RevokedToken:
		jsonError(w, http.StatusUnauthorized, "token retired: rotate to the next one")
		return
	default:
		jsonError(w, http.StatusUnauthorized, "invalid or missing X-Auth-Token")
		return
	}
	if v := r.Header.Get("X-Auth-Version"); v != "2.0" {
		jsonError(w, http.StatusBadRequest, "X-Auth-Version must be 2.0, got %q", v)
		return
	}
	var in struct {
		Email string `json:"email"`
		State string `json:"state"`
	}
	if !decodeJSON(w, r, &in) || !required(w, "email", in.Email) {
		return
	}
	if !validEmail(in.Email) {
		jsonError(w, http.StatusUnprocessableEntity, "%s is not a deliverable address", in.Email)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": "R-" + hash(in.Email), "status": "accepted"})
}

const signedIndex = `POST /signed/leads           X-Timestamp (Unix s, ±5m) + X-Signature hex HMAC-SHA256(method+path+timestamp+body), JSON {email, phone, product, amount}
POST /rotate/leads           X-Auth-Token (demo-token-a is retired: 401), X-Auth-Version: 2.0, JSON {email, state}
`
