package engine

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key signed by ca.
func (ca *testCA) issue(t *testing.T, cn string, server bool, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"partner.test"}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// TestMutualTLS: a partner with a private CA that requires a client
// certificate is reached with ca_file + cert_file + key_file; without the
// client certificate the handshake fails with class tls (and is not
// retried); bad files are bind errors naming the file.
func TestMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	srvCert, srvKey := ca.issue(t, "partner", true, time.Now().Add(time.Hour))
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	var tries int
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"who":"`+r.TLS.PeerCertificates[0].Subject.CommonName+`"}`)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
		VerifyConnection: func(tls.ConnectionState) error { tries++; return nil }}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.StartTLS()
	defer srv.Close()

	dir := t.TempDir()
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cliCert, cliKey := ca.issue(t, "plumb-client", false, time.Now().Add(time.Hour))
	oldCert, oldKey := ca.issue(t, "old-client", false, time.Now().Add(-time.Hour))
	otherCert, _ := ca.issue(t, "other", false, time.Now().Add(time.Hour))
	write("ca.pem", ca.pem)
	write("client.pem", cliCert)
	write("client.key", cliKey)
	write("old.pem", oldCert)
	write("old.key", oldKey)
	write("other.pem", otherCert)
	write("garbage.pem", []byte("not a pem"))

	load := func(tlsSection string) (*Runner, error) {
		src := "version: 1\nname: mtls\nsettings: { base_url: {}, cert: { default: client.pem } }\nhttp:\n  tls: " + tlsSection + "\nsteps:\n  - name: who\n    request: { url: \"{{settings.base_url}}/\" }\n    capture: { who: { json: who } }\n"
		p, err := Parse(filepath.Join(dir, "mtls.yaml"), []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return p.Bind(Config{Values: map[string]any{"base_url": srv.URL}})
	}
	r, err := load(`{ ca_file: ca.pem, cert_file: "{{settings.cert}}", key_file: client.key }`)
	if err != nil {
		t.Fatal(err)
	}
	res := r.Run(context.Background(), nil)
	r.Close(context.Background())
	if res.Outcome != Success || res.Steps[0].Captured["who"] != "plumb-client" {
		t.Fatalf("with a client certificate: %s %s %q", res.Outcome, res.Class, res.Reason)
	}

	tries = 0
	r, err = load(`{ ca_file: ca.pem }`)
	if err != nil {
		t.Fatal(err)
	}
	res = r.Run(context.Background(), nil)
	r.Close(context.Background())
	if res.Outcome != Error || res.Class != ClassTLS && res.Class != ClassConnection {
		t.Fatalf("without a client certificate: %s %s %q", res.Outcome, res.Class, res.Reason)
	}

	// the server's certificate is from a CA the system does not trust
	r, err = load(`{ min_version: "1.3" }`)
	if err != nil {
		t.Fatal(err)
	}
	res = r.Run(context.Background(), nil)
	r.Close(context.Background())
	var ve *tls.CertificateVerificationError
	if res.Class != ClassTLS || !errors.As(res.Err, &ve) || res.Steps[0].Attempts != 1 {
		t.Fatalf("untrusted server: %s %s attempts %d %q", res.Outcome, res.Class, res.Steps[0].Attempts, res.Reason)
	}

	// insecure_skip_verify: accepted, and loudly logged at every Bind
	var logged strings.Builder
	src := "version: 1\nname: mtls\nsettings: { base_url: {} }\nhttp:\n  tls: { insecure_skip_verify: true, cert_file: client.pem, key_file: client.key }\nsteps:\n  - name: who\n    request: { url: \"{{settings.base_url}}/\" }\n"
	p, err := Parse(filepath.Join(dir, "mtls.yaml"), []byte(src), WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if r, err = p.Bind(Config{Values: map[string]any{"base_url": srv.URL}}); err != nil {
		t.Fatal(err)
	}
	res = r.Run(context.Background(), nil)
	r.Close(context.Background())
	if res.Outcome != Success || !strings.Contains(logged.String(), "level=WARN") || !strings.Contains(logged.String(), "verification is OFF") {
		t.Fatalf("insecure: %s %q; log %q", res.Outcome, res.Reason, logged.String())
	}

	for section, want := range map[string]string{
		`{ ca_file: missing.pem }`:                       "missing.pem",
		`{ ca_file: garbage.pem }`:                       "garbage.pem: no certificate",
		`{ cert_file: other.pem, key_file: client.key }`: "other.pem / client.key",
		`{ cert_file: old.pem, key_file: old.key }`:      "old.pem: the certificate expired",
		`{ cert_file: client.pem, key_file: nope.key }`:  "nope.key",
		`{ cert_file: client.pem }`:                      "cert_file and key_file go together",
		`{ min_version: "1.0" }`:                         `unsupported min_version "1.0"`,
	} {
		src := "version: 1\nname: mtls\nsettings: { base_url: {}, cert: { default: client.pem } }\nhttp:\n  tls: " + section + "\nsteps:\n  - name: who\n    request: { url: \"{{settings.base_url}}/\" }\n"
		p, err := Parse(filepath.Join(dir, "mtls.yaml"), []byte(src))
		if err == nil {
			_, err = p.Bind(Config{Values: map[string]any{"base_url": srv.URL}})
		}
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "mtls.yaml:5:") {
			t.Errorf("%s: got %v, want an error at mtls.yaml:5 naming %q", section, err, want)
		}
	}
}
