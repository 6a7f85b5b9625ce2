package engine

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"

	"github.com/plumbhq/plumb/steps"
	"github.com/plumbhq/plumb/template"
)

// tlsSpec is a compiled http.tls section: its file names are templates
// over settings, read when a runner is bound.
type tlsSpec struct {
	pos           steps.Pos
	dir           string
	ca, cert, key *template.Template
	minVersion    uint16
	serverName    string
	insecure      bool
}

func (c *compiler) tls(t *steps.TLS) *tlsSpec {
	if t == nil {
		return nil
	}
	spec := &tlsSpec{pos: t.Pos, dir: filepath.Dir(c.in.File), serverName: t.ServerName, insecure: t.InsecureSkipVerify, minVersion: tls.VersionTLS12}
	if t.MinVersion == steps.TLS13 {
		spec.minVersion = tls.VersionTLS13
	}
	file := func(v string) *template.Template {
		if v == "" {
			return nil
		}
		return c.tmpl(steps.String{Value: v, Pos: t.Pos}, template.Plain, scopeSettings)
	}
	spec.ca, spec.cert, spec.key = file(t.CAFile), file(t.CertFile), file(t.KeyFile)
	return spec
}

// config reads the section's files and builds the TLS configuration of a
// runner. Every problem names the file and is positioned at the section.
func (t *tlsSpec) config(p *Plan, values map[string]any, errs *steps.ErrorList) *tls.Config {
	cfg := &tls.Config{MinVersion: t.minVersion, ServerName: t.serverName, InsecureSkipVerify: t.insecure}
	data := map[string]any{"settings": values}
	path := func(tm *template.Template, what string) (string, bool) {
		name, err := tm.Render(data)
		if err != nil {
			errs.Add(t.pos, "", "tls %s: %v", what, err)
			return "", false
		}
		if !filepath.IsAbs(name) {
			name = filepath.Join(t.dir, name)
		}
		return name, true
	}
	if t.ca != nil {
		if name, ok := path(t.ca, "ca_file"); ok {
			pem, err := p.readFile(name)
			switch {
			case err != nil:
				errs.Add(t.pos, "", "tls ca_file %v", err)
			default:
				pool, err := x509.SystemCertPool()
				if err != nil {
					pool = x509.NewCertPool()
				}
				if !pool.AppendCertsFromPEM(pem) {
					errs.Add(t.pos, "the file must hold PEM CERTIFICATE blocks", "tls ca_file %s: no certificate in it", filepath.Base(name))
				}
				cfg.RootCAs = pool
			}
		}
	}
	if t.cert != nil && t.key != nil {
		certName, ok1 := path(t.cert, "cert_file")
		keyName, ok2 := path(t.key, "key_file")
		var certPEM, keyPEM []byte
		var err error
		if ok1 && ok2 {
			if certPEM, err = p.readFile(certName); err != nil {
				errs.Add(t.pos, "", "tls cert_file %v", err)
				ok1 = false
			}
			if keyPEM, err = p.readFile(keyName); err != nil {
				errs.Add(t.pos, "", "tls key_file %v", err)
				ok2 = false
			}
		}
		if ok1 && ok2 {
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				errs.Add(t.pos, "", "tls client certificate %s / %s: %v", filepath.Base(certName), filepath.Base(keyName), err)
			} else {
				leaf, err := x509.ParseCertificate(pair.Certificate[0])
				switch {
				case err != nil:
					errs.Add(t.pos, "", "tls cert_file %s: %v", filepath.Base(certName), err)
				case p.clock.Now().After(leaf.NotAfter):
					errs.Add(t.pos, "renew the certificate", "tls cert_file %s: the certificate expired on %s", filepath.Base(certName), leaf.NotAfter.UTC().Format("2006-01-02"))
				case p.clock.Now().Before(leaf.NotBefore):
					errs.Add(t.pos, "", "tls cert_file %s: the certificate is not valid before %s", filepath.Base(certName), leaf.NotBefore.UTC().Format("2006-01-02"))
				}
				cfg.Certificates = []tls.Certificate{pair}
			}
		}
	}
	if t.insecure {
		p.log.Warn("TLS certificate verification is OFF (http.tls.insecure_skip_verify): any server can impersonate the partner", "integration", p.ref())
	}
	return cfg
}
