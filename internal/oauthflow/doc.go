// Package oauthflow serves the OAuth2 authorization-code "install" flow of
// plumb serve: the routes a user's browser goes through to connect an
// integration to a partner account, and an encrypted token store.
//
//	GET /v1/oauth/{integration}/start     302 to the partner's authorization page
//	GET /v1/oauth/{integration}/callback  the partner redirects back here with a code
//	GET /v1/oauth/{integration}/status    JSON: logged in, or needs a login (and why:
//	                                      none yet, or refused by the partner, when),
//	                                      expiry (never a secret)
//
// Start uses PKCE (S256) and a random state. The state is bound to the
// browser that started the login by a short-lived cookie (HttpOnly,
// SameSite=Lax, Secure when the base URL is https) holding a second random
// value; state, cookie value and PKCE verifier are kept in memory on the
// server, expire, and are used once. The callback checks state and cookie
// (in constant time), exchanges the code with golang.org/x/oauth2 and the
// verifier, and saves the token in the [auth.TokenStore] under
// [auth.StoreKey] of the integration's auth section — the key the engine's
// oauth2 authorization_code authenticator reads, and under which it saves
// refreshed (and rotated) tokens, exactly as for `plumb auth login`.
//
// Pages and JSON never show tokens, authorization codes, verifiers or the
// client secret, and the log never records them.
//
// [EncryptedFileStore] keeps tokens encrypted at rest (AES-256-GCM) with a
// key from the environment ([KeyFromEnv], [DefaultKeyEnv]).
package oauthflow
