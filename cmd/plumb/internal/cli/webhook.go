package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plumbhq/plumb/webhook"
)

const webhookDoc = `
Helpers for webhook receivers (the webhook: section served by plumb serve):

  plumb webhook sign [flags] FILE      print the headers a sender signs FILE with
  plumb webhook replay [flags] ID...   replay dead-lettered events through plumb serve

plumb webhooks is the same command. Run plumb webhook sign -h or
plumb webhook replay -h for their flags.`

const webhookSignDoc = `
Print the signature headers a sender would attach to the body in FILE ("-":
standard input), one "Name: value" per line, to curl-test a receiver:

  plumb webhook sign --preset actuallycare --secret-env HOOK_SECRET event.json
  plumb webhook sign --preset standard-webhooks --secret whsec_… --id msg_1 \
      --curl http://127.0.0.1:8080/v1/hooks/leads event.json | sh

The body is signed exactly as read (no re-encoding). Presets: actuallycare,
standard-webhooks, svix, github, stripe, hmac (with --header and the other
generic flags). --secret may be repeated (schemes that carry several
signatures sign with each); prefer --secret-env, which keeps the secret out
of the process list and your shell history. --timestamp fixes the signed
time (unix seconds; default now).`

const webhookReplayDoc = `
Replay dead-lettered webhook events: each ID (as answered by the receiver,
wh_…) is queued again through plumb serve's POST /v1/dead/{id}/retry and
runs through its integration's steps once more. --all replays every dead
webhook event (GET /v1/dead). The API token comes from --token-file or
PLUMB_SERVE_TOKEN.`

func webhookCmd(ctx context.Context, s *stdio, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(s.stdout, "Usage: plumb webhook sign|replay [flags] ...\n\n%s\n", strings.TrimSpace(webhookDoc))
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	switch args[0] {
	case "sign":
		return webhookSign(s, args[1:])
	case "replay":
		return webhookReplay(ctx, s, args[1:])
	}
	s.errorf("webhook: unknown subcommand %q (sign or replay)", args[0])
	return ExitUsage
}

type listFlag []string

func (l *listFlag) String() string     { return strconv.Itoa(len(*l)) + " values" }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func webhookSign(s *stdio, args []string) int {
	fs := newFlagSet(s, "webhook sign", "--preset P (--secret S | --secret-env VAR) [flags] FILE", webhookSignDoc)
	var cfg webhook.Config
	var secrets, secretEnvs listFlag
	fs.StringVar(&cfg.Preset, "preset", "", "signature scheme: actuallycare, standard-webhooks, svix, github, stripe or hmac")
	fs.Var(&secrets, "secret", "signing `SECRET` (repeatable)")
	fs.Var(&secretEnvs, "secret-env", "read a signing secret from the environment variable `VAR` (repeatable)")
	id := fs.String("id", "", "the event `ID` (standard-webhooks and svix sign it; github sends it as X-GitHub-Delivery)")
	ts := fs.Int64("timestamp", 0, "signed time in unix `SECONDS` (default now)")
	curl := fs.String("curl", "", "print a curl command posting FILE to `URL` instead of the headers")
	fs.StringVar(&cfg.Header, "header", "", "hmac: the signature header")
	fs.StringVar(&cfg.Prefix, "prefix", "", "hmac: text before the signature, e.g. sha256=")
	fs.StringVar(&cfg.Algorithm, "algorithm", "", "hmac: sha256 (default), sha1 or sha512")
	fs.StringVar(&cfg.Encoding, "encoding", "", "hmac: hex (default), base64 or base64url")
	fs.StringVar(&cfg.Signed, "signed", "", "hmac: the signed content, e.g. {timestamp}.{body} (default {body})")
	fs.StringVar(&cfg.TimestampHeader, "timestamp-header", "", "hmac: the header carrying the signed timestamp")
	fs.StringVar(&cfg.IDHeader, "id-header", "", "hmac: the header carrying the event id")
	pos, err := parseArgs(s, fs, args)
	if err != nil {
		return exitForParse(err)
	}
	if len(pos) != 1 {
		s.errorf("webhook sign: give exactly one FILE (- for standard input), got %d", len(pos))
		return ExitUsage
	}
	cfg.Secrets = secrets
	for _, name := range secretEnvs {
		v, ok := s.env(name)
		if !ok || v == "" {
			s.errorf("webhook sign: environment variable %s is not set", name)
			return ExitUsage
		}
		cfg.Secrets = append(cfg.Secrets, v)
	}
	var body []byte
	if pos[0] == "-" {
		body, err = io.ReadAll(s.stdin)
	} else {
		body, err = os.ReadFile(pos[0])
	}
	if err != nil {
		s.errorf("webhook sign: %v", err)
		return ExitUsage
	}
	v, err := webhook.New(cfg, nil)
	if err != nil {
		s.errorf("webhook sign: %v", err)
		return ExitUsage
	}
	var at time.Time
	if *ts != 0 {
		at = time.Unix(*ts, 0)
	}
	h, err := v.Sign(body, *id, at)
	if err != nil {
		s.errorf("webhook sign: %v", err)
		return ExitUsage
	}
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	if *curl != "" {
		if u, err := url.Parse(*curl); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			s.errorf("webhook sign: --curl wants an http(s) URL, got %q", *curl)
			return ExitUsage
		}
		var b strings.Builder
		b.WriteString("curl -sS -X POST -H 'Content-Type: application/json'")
		for _, k := range names {
			fmt.Fprintf(&b, " -H %s", shellQuote(k+": "+h.Get(k)))
		}
		src := "@" + pos[0]
		if pos[0] == "-" {
			src = string(body)
		}
		fmt.Fprintf(&b, " --data-binary %s %s\n", shellQuote(src), shellQuote(*curl))
		fmt.Fprint(s.stdout, b.String())
		return ExitOK
	}
	for _, k := range names {
		fmt.Fprintf(s.stdout, "%s: %s\n", k, h.Get(k))
	}
	return ExitOK
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func webhookReplay(ctx context.Context, s *stdio, args []string) int {
	fs := newFlagSet(s, "webhook replay", "--addr URL [--token-file FILE] (--all | ID...)", webhookReplayDoc)
	addr := fs.String("addr", "http://127.0.0.1:8080", "plumb serve's `URL`")
	tokenFile := fs.String("token-file", "", "read the API token from `FILE` (its first line)")
	all := fs.Bool("all", false, "replay every dead-lettered webhook event")
	ids, err := parseArgs(s, fs, args)
	if err != nil {
		return exitForParse(err)
	}
	if *all == (len(ids) > 0) {
		s.errorf("webhook replay: give event ids or --all")
		return ExitUsage
	}
	token, _ := s.env("PLUMB_SERVE_TOKEN")
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			s.errorf("webhook replay: %v", err)
			return ExitUsage
		}
		token, _, _ = strings.Cut(strings.TrimSpace(string(b)), "\n")
		token = strings.TrimSpace(token)
	}
	base := strings.TrimRight(*addr, "/")
	client := &http.Client{Timeout: 30 * time.Second}
	call := func(method, path string) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
		if err != nil {
			return 0, nil, err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		return resp.StatusCode, b, err
	}
	if *all {
		code, b, err := call("GET", "/v1/dead?limit=1000")
		if err != nil || code != 200 {
			s.errorf("webhook replay: GET /v1/dead: %s", answerProblem(code, b, err))
			return ExitLeadError
		}
		var dead struct {
			Dead []struct{ ID string } `json:"dead"`
		}
		if err := json.Unmarshal(b, &dead); err != nil {
			s.errorf("webhook replay: GET /v1/dead: %v", err)
			return ExitLeadError
		}
		for _, d := range dead.Dead {
			if strings.HasPrefix(d.ID, webhook.JobPrefix) {
				ids = append(ids, d.ID)
			}
		}
		if len(ids) == 0 {
			fmt.Fprintln(s.stdout, "no dead webhook events")
			return ExitOK
		}
	}
	code := ExitOK
	for _, id := range ids {
		status, b, err := call("POST", "/v1/dead/"+url.PathEscape(id)+"/retry")
		if err != nil || status != http.StatusAccepted {
			s.errorf("webhook replay %s: %s", id, answerProblem(status, b, err))
			code = ExitLeadError
			continue
		}
		fmt.Fprintf(s.stdout, "replayed %s (status: %s/v1/leads/%s)\n", id, base, id)
	}
	return code
}

// answerProblem describes a failed API call.
func answerProblem(status int, body []byte, err error) string {
	if err != nil {
		return err.Error()
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		return fmt.Sprintf("%d %s: %s", status, e.Error.Code, e.Error.Message)
	}
	return fmt.Sprintf("%d %s", status, bytes.TrimSpace(body))
}
