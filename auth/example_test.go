package auth_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/plumbhq/plumb/auth"
)

func ExampleNew() {
	// A partner API that wants its key in X-API-Key.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-API-Key") != "demo-key" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"is_blacklisted":false}`)
	}))
	defer api.Close()

	// The integration's `auth:` section, rendered from settings.
	a, err := auth.New(auth.Config{Type: "api_key", In: "header", Name: "X-API-Key", Value: "demo-key"})
	if err != nil {
		fmt.Println(err)
		return
	}

	req, _ := http.NewRequest(http.MethodPost, api.URL+"/blacklist/check", nil)
	if err := a.Apply(context.Background(), req, nil); err != nil { // before every try
		fmt.Println(err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 {"is_blacklisted":false}
}
