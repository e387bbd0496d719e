package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"

	"github.com/wijtechniek/wijgate/caddymodule/token"
)

// TokenKeys performs `wijgate token keys` on the identity-token key set,
// in the running server or on a store the command opened itself.
type TokenKeys struct {
	signer *token.Signer
}

// OpenTokenKeys opens the store at location for the token key commands;
// close it when done. Like a starting server, it rotates the set first
// when a rotation is due.
func OpenTokenKeys(location string) (*TokenKeys, func() error, error) {
	e, closeEngine, err := openEngine(context.Background(), location, nil)
	if err != nil {
		return nil, nil, err
	}
	s, err := token.NewSigner(e, token.Options{})
	if err != nil {
		_ = closeEngine()
		return nil, nil, err
	}
	return &TokenKeys{signer: s}, closeEngine, nil
}

// List returns the published keys, current first.
func (k *TokenKeys) List() []token.KeyInfo { return k.signer.KeyList() }

// Rotate makes the next key sign now; token.ErrNextKeyTooNew while it has
// been published for less than two minutes.
func (k *TokenKeys) Rotate() ([]token.KeyInfo, error) {
	if err := k.signer.Rotate(); err != nil {
		return nil, err
	}
	return k.signer.KeyList(), nil
}

// handleTokenKeys serves the token key commands:
//
//	GET  /wijgate/token/keys         list
//	POST /wijgate/token/keys/rotate  the next key signs, a new next key is published
func handleTokenKeys(w http.ResponseWriter, r *http.Request) error {
	v, err := caddy.ActiveContext().AppIfConfigured("wijgate")
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("no wijgate app is running")}
	}
	app := v.(*App)
	if !app.ready.Load() {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("the server has not opened its store yet; try again shortly")}
	}
	k := &TokenKeys{signer: app.tokens}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/wijgate/token/keys":
		return writeJSON(w, k.List())
	case r.Method == http.MethodPost && r.URL.Path == "/wijgate/token/keys/rotate":
		list, err := k.Rotate()
		if errors.Is(err, token.ErrNextKeyTooNew) {
			return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
		}
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
		}
		return writeJSON(w, list)
	}
	return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("%s %s is not a token key operation", r.Method, r.URL.Path)}
}
