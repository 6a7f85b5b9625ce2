package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

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

func authCmd(ctx context.Context, s *stdio, args []string) int {
	fs := newFlagSet(s, "auth", "login|status|logout [flags] INTEGRATION.yaml", authDoc)
	var sf settingsFlags
	var dir string
	sf.register(fs)
	registerTokenDir(fs, &dir)
	pos, err := parseArgs(s, fs, args)
	if err != nil {
		return exitForParse(err)
	}
	bad := usageError(s, "auth")
	if len(pos) == 0 {
		return bad("give a subcommand: login, status or logout")
	}
	sub := pos[0]
	if sub != "login" && sub != "status" && sub != "logout" {
		return bad("unknown subcommand %q (want login, status or logout)", sub)
	}
	file, problem := integrationArg(pos[1:])
	if problem != "" {
		return bad("%s: %s", sub, problem)
	}
	dir, err = tokenDir(s, dir)
	if err != nil {
		s.errorf("auth %s: %v", sub, err)
		return ExitUsage
	}
	files := auth.NewFileStore(dir)
	setup := &planSetup{s: s, cmd: "auth " + sub, file: file, tokens: files}
	defer setup.close()
	if !setup.load(nil) || !setup.resolve(&sf) {
		return ExitUsage
	}
	plan, settings := setup.plan, setup.settings
	var oauth, code []auth.Config
	seen := map[string]bool{}
	for _, c := range settings.OAuth2Configs() {
		k := auth.StoreKey(c)
		if c.Type != auth.TypeOAuth2 || seen[k] {
			continue
		}
		seen[k] = true
		oauth = append(oauth, c)
		if c.Grant == auth.GrantAuthorizationCode {
			code = append(code, c)
		}
	}
	if len(code) == 0 && sub != "status" {
		s.errorf("auth %s: %s has no auth: section with type: oauth2 and grant: authorization_code", sub, file)
		return ExitUsage
	}

	switch sub {
	case "login":
		for i, c := range code {
			if len(code) > 1 {
				fmt.Fprintf(s.stdout, "login %d of %d: %s\n", i+1, len(code), describe(c))
			}
			if rc := login(ctx, s, plan.Name(), c, files, settings.Redact); rc != ExitOK {
				return rc
			}
		}
		return ExitOK
	case "logout":
		for _, c := range code {
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
	// status
	if len(oauth) == 0 {
		fmt.Fprintf(s.stdout, "%s has no oauth2 auth: section; nothing to log in to\n", file)
		return ExitOK
	}
	code0 := ExitOK
	for _, c := range oauth {
		fmt.Fprintf(s.stdout, "%s\n", describe(c))
		if c.Grant != auth.GrantAuthorizationCode {
			fmt.Fprintln(s.stdout, "  client_credentials: plumb fetches a token at the start of each run (nothing to log in to or store)")
			continue
		}
		key := auth.StoreKey(c)
		t, err := files.Load(key)
		if err != nil {
			s.errorf("auth status: %v", err)
			return ExitUsage
		}
		if r := auth.RefusalOf(t); r != nil {
			fmt.Fprintf(s.stdout, "  login refused by the partner at %s (%s): log in again (run plumb auth login %s)\n",
				r.At.Local().Format(time.RFC3339), r.Reason, file)
			code0 = ExitLeadError
			continue
		}
		if t == nil || (t.AccessToken == "" && t.RefreshToken == "") {
			fmt.Fprintf(s.stdout, "  not logged in (run plumb auth login %s)\n", file)
			code0 = ExitLeadError
			continue
		}
		fmt.Fprintf(s.stdout, "  token stored in %s\n", files.Path(key))
		switch {
		case t.Expiry.IsZero():
			fmt.Fprintln(s.stdout, "  expires: never (no expiry given)")
		case t.Expiry.Before(time.Now()):
			fmt.Fprintf(s.stdout, "  expires: %s (expired)\n", t.Expiry.Local().Format(time.RFC3339))
		default:
			fmt.Fprintf(s.stdout, "  expires: %s (in %s)\n", t.Expiry.Local().Format(time.RFC3339), time.Until(t.Expiry).Round(time.Second))
		}
		if t.RefreshToken != "" {
			fmt.Fprintln(s.stdout, "  refresh token: yes (renewed automatically when it expires)")
		} else {
			fmt.Fprintln(s.stdout, "  refresh token: no (log in again when it expires)")
		}
	}
	return code0
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
