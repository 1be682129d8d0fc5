package httpconn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/causeway/causeway/system"
)

// tokenSource fetches and caches an OAuth 2.0 access token with the client credentials
// grant, refreshing it a minute before it expires.
type tokenSource struct {
	cfg *system.OAuth2
	hc  *http.Client

	mu      sync.Mutex
	access  string
	expires time.Time
}

// tokenError is a token endpoint that refused or failed; status is its HTTP status.
type tokenError struct {
	status int
	err    error
}

func (e *tokenError) Error() string { return "OAuth 2.0 token: " + e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// statusOf gives the HTTP status behind a token error (0 for none), for classifying it.
func statusOf(err error) int {
	var te *tokenError
	if errors.As(err, &te) {
		if te.status == 0 {
			return 503 // no answer: transient, like any network failure
		}
		return te.status
	}
	return 0
}

// token returns a valid access token, fetching one when there is none, it expires within
// a minute, or refresh asks for a new one.
func (t *tokenSource) token(ctx context.Context, refresh bool) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !refresh && t.access != "" && time.Until(t.expires) > time.Minute {
		return t.access, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(t.cfg.Scopes) > 0 {
		form.Set("scope", strings.Join(t.cfg.Scopes, " "))
	}
	if t.cfg.Audience != "" {
		form.Set("audience", t.cfg.Audience)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", &tokenError{err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(t.cfg.ClientID), url.QueryEscape(t.cfg.ClientSecret.Reveal()))
	resp, err := t.hc.Do(req)
	if err != nil {
		return "", &tokenError{err: scrub(err)}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", &tokenError{status: resp.StatusCode, err: fmt.Errorf("%s answered HTTP %d", t.cfg.TokenURL, resp.StatusCode)}
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(data, &tok); err != nil || tok.AccessToken == "" {
		return "", &tokenError{status: 502, err: fmt.Errorf("%s answered without an access_token", t.cfg.TokenURL)}
	}
	t.access = tok.AccessToken
	t.expires = time.Now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	if tok.ExpiresIn <= 0 {
		t.expires = time.Now().Add(5 * time.Minute)
	}
	return t.access, nil
}
