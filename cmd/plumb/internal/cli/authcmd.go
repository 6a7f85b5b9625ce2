package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/plumbhq/plumb/auth"
)

const authDoc = `
Manage the OAuth2 tokens of integrations whose auth: section uses
type: oauth2 with grant: authorization_code (the user approves plumb in a
browser once; plumb run and plumb try then use and refresh the token).

  login   start a loopback callback server on 127.0.0.1, print the
          provider's authorization URL to open in a browser, wait for the
          approval (Ctrl-C cancels), exchange the code (PKCE) and store the
          token in the token directory
  status  for each oauth2 auth section: whether a token is stored, when it
          expires and whether it has a refresh token, or that the partner
          refused the login (revoked it): runs then fail at once, without
          asking the partner again, until the next login
  logout  delete the stored tokens

The integration's settings are resolved as for plumb run (--settings,
--set, the environment, defaults), since auth values such as client_id
come from them. Tokens are stored in --token-dir (default $PLUMB_TOKEN_DIR,
else <user config dir>/plumb/tokens), one file (mode 0600) per client,
token URL and scopes. Tokens are never printed.

Exit status: 0 done (status: every authorization_code section has a
token), 1 status found a section without a usable token, 2 bad usage,
integration or settings, or the login failed, 130 login interrupted.`

// authArgs are plumb auth's flags and arguments.
type authArgs struct {
	settings  settingsFlags
	dir       string
	sub, file string
}

func authCmd(ctx context.Context, s *stdio, args []string) int {
	a, code := parseAuthArgs(s, args)
	if a == nil {
		return code
	}
	files := auth.NewFileStore(a.dir)
	setup := &planSetup{s: s, cmd: "auth " + a.sub, file: a.file, tokens: files}
	defer setup.close()
	if !setup.load(nil) || !setup.resolve(&a.settings) {
		return ExitUsage
	}
	plan, settings := setup.plan, setup.settings
	oauth, grants := oauthSections(settings.OAuth2Configs())
	if len(grants) == 0 && a.sub != "status" {
		s.errorf("auth %s: %s has no auth: section with type: oauth2 and grant: authorization_code", a.sub, a.file)
		return ExitUsage
	}
	switch a.sub {
	case "login":
		return authLogin(ctx, s, plan.Name(), grants, files, settings.Redact)
	case "logout":
		return authLogout(s, grants, files)
	}
	return authStatus(s, a.file, oauth, files)
}

// parseAuthArgs parses plumb auth's flags and arguments and finds the
// token directory: the arguments, or nil and the exit code.
func parseAuthArgs(s *stdio, args []string) (*authArgs, int) {
	fs := newFlagSet(s, "auth", "login|status|logout [flags] INTEGRATION.yaml", authDoc)
	a := &authArgs{}
	a.settings.register(fs)
	registerTokenDir(fs, &a.dir)
	pos, err := parseArgs(s, fs, args)
	if err != nil {
		return nil, exitForParse(err)
	}
	bad := usageError(s, "auth")
	if len(pos) == 0 {
		return nil, bad("give a subcommand: login, status or logout")
	}
	a.sub = pos[0]
	if a.sub != "login" && a.sub != "status" && a.sub != "logout" {
		return nil, bad("unknown subcommand %q (want login, status or logout)", a.sub)
	}
	file, problem := integrationArg(pos[1:])
	if problem != "" {
		return nil, bad("%s: %s", a.sub, problem)
	}
	a.file = file
	a.dir, err = tokenDir(s, a.dir)
	if err != nil {
		s.errorf("auth %s: %v", a.sub, err)
		return nil, ExitUsage
	}
	return a, ExitOK
}

// oauthSections are the integration's oauth2 auth sections, one per
// stored token, and those of them with grant authorization_code.
func oauthSections(configs []auth.Config) (oauth, grants []auth.Config) {
	seen := map[string]bool{}
	for _, c := range configs {
		k := auth.StoreKey(c)
		if c.Type != auth.TypeOAuth2 || seen[k] {
			continue
		}
		seen[k] = true
		oauth = append(oauth, c)
		if c.Grant == auth.GrantAuthorizationCode {
			grants = append(grants, c)
		}
	}
	return oauth, grants
}

// authLogin logs in to each authorization_code section in turn.
func authLogin(ctx context.Context, s *stdio, name string, grants []auth.Config, files *auth.FileStore, redact func(string) string) int {
	for i, c := range grants {
		if len(grants) > 1 {
			fmt.Fprintf(s.stdout, "login %d of %d: %s\n", i+1, len(grants), describe(c))
		}
		if rc := login(ctx, s, name, c, files, redact); rc != ExitOK {
			return rc
		}
	}
	return ExitOK
}

// authLogout deletes the stored token of each authorization_code section.
func authLogout(s *stdio, grants []auth.Config, files *auth.FileStore) int {
	for _, c := range grants {
		path := files.Path(auth.StoreKey(c))
		t, err := files.Load(auth.StoreKey(c))
		if err != nil {
			s.errorf("auth logout: %v", err)
			return ExitUsage
		}
		if err := files.Delete(auth.StoreKey(c)); err != nil {
			s.errorf("auth logout: %v", err)
			return ExitUsage
		}
		if t == nil {
			fmt.Fprintf(s.stdout, "%s: not logged in; nothing to remove\n", describe(c))
		} else {
			fmt.Fprintf(s.stdout, "%s: logged out; removed %s\n", describe(c), path)
		}
	}
	return ExitOK
}

// authStatus prints the token of each oauth2 section: exit 1 when an
// authorization_code section has no usable token.
func authStatus(s *stdio, file string, oauth []auth.Config, files *auth.FileStore) int {
	if len(oauth) == 0 {
		fmt.Fprintf(s.stdout, "%s has no oauth2 auth: section; nothing to log in to\n", file)
		return ExitOK
	}
	code := ExitOK
	for _, c := range oauth {
		fmt.Fprintf(s.stdout, "%s\n", describe(c))
		if c.Grant != auth.GrantAuthorizationCode {
			fmt.Fprintln(s.stdout, "  client_credentials: plumb fetches a token at the start of each run (nothing to log in to or store)")
			continue
		}
		t, err := files.Load(auth.StoreKey(c))
		if err != nil {
			s.errorf("auth status: %v", err)
			return ExitUsage
		}
		if !tokenUsable(s.stdout, t, file) {
			code = ExitLeadError
			continue
		}
		writeToken(s.stdout, t, files.Path(auth.StoreKey(c)))
	}
	return code
}

// tokenUsable says why a stored token t is not usable (the partner
// refused the login, or none is stored) and returns false; true when it
// is.
func tokenUsable(w io.Writer, t *oauth2.Token, file string) bool {
	if r := auth.RefusalOf(t); r != nil {
		fmt.Fprintf(w, "  login refused by the partner at %s (%s): log in again (run plumb auth login %s)\n",
			r.At.Local().Format(time.RFC3339), r.Reason, file)
		return false
	}
	if t == nil || (t.AccessToken == "" && t.RefreshToken == "") {
		fmt.Fprintf(w, "  not logged in (run plumb auth login %s)\n", file)
		return false
	}
	return true
}

// writeToken prints where a usable token is stored, when it expires and
// whether it has a refresh token; never the token.
func writeToken(w io.Writer, t *oauth2.Token, path string) {
	fmt.Fprintf(w, "  token stored in %s\n", path)
	switch {
	case t.Expiry.IsZero():
		fmt.Fprintln(w, "  expires: never (no expiry given)")
	case t.Expiry.Before(time.Now()):
		fmt.Fprintf(w, "  expires: %s (expired)\n", t.Expiry.Local().Format(time.RFC3339))
	default:
		fmt.Fprintf(w, "  expires: %s (in %s)\n", t.Expiry.Local().Format(time.RFC3339), time.Until(t.Expiry).Round(time.Second))
	}
	if t.RefreshToken != "" {
		fmt.Fprintln(w, "  refresh token: yes (renewed automatically when it expires)")
	} else {
		fmt.Fprintln(w, "  refresh token: no (log in again when it expires)")
	}
}

// describe names an oauth2 section without any secret.
func describe(c auth.Config) string {
	grant := c.Grant
	if grant == "" {
		grant = auth.GrantClientCredentials
	}
	d := fmt.Sprintf("oauth2 %s: client %s at %s", grant, c.ClientID, c.TokenURL)
	if len(c.Scopes) > 0 {
		d += ", scopes " + strings.Join(c.Scopes, " ")
	}
	return d
}

// login runs one authorization-code login: it prints the authorization URL
// and waits for the browser to come back (or ctx, i.e. Ctrl-C).
func login(ctx context.Context, s *stdio, name string, c auth.Config, files *auth.FileStore, redact func(string) string) int {
	startCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	l, err := auth.StartLogin(startCtx, c, auth.WithTokenStore(files), auth.WithIntegration(name))
	cancel()
	if err != nil {
		s.errorf("auth login: %s", redact(err.Error()))
		return ExitUsage
	}
	fmt.Fprintf(s.stdout, "Open this URL in a browser: %s\n", l.AuthURL())
	fmt.Fprintf(s.stdout, "Waiting for the provider to redirect to %s (Ctrl-C cancels)...\n", l.RedirectURL())
	if _, err := l.Wait(ctx); err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			s.errorf("auth login: cancelled; no token stored")
			return ExitInterrupt
		}
		s.errorf("auth login: %s", redact(err.Error()))
		return ExitUsage
	}
	fmt.Fprintf(s.stdout, "logged in; token stored in %s\n", files.Path(auth.StoreKey(c)))
	return ExitOK
}
