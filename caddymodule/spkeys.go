package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
)

// SPKeySummary is how the operator commands show one eHerkenning key of
// the service provider; it never carries the private key.
type SPKeySummary struct {
	Role        string `json:"role"`
	Fingerprint string `json:"fingerprint"`
	Subject     string `json:"subject"`
	// EncryptionFingerprint is set when the key encrypts with a pair of
	// its own (configured apart as encryption_cert).
	EncryptionFingerprint string    `json:"encryption_fingerprint,omitempty"`
	NotAfter              time.Time `json:"not_after"`
	Published             time.Time `json:"published"`
}

// SPKeyRequest is the admin API's body for the key operations.
type SPKeyRequest struct {
	// Cert and Key are PEM (add); both empty generates a pair.
	Cert string `json:"cert,omitempty"`
	Key  string `json:"key,omitempty"`
	// Force activates a next key published for less than
	// eherkenning.MinPublished.
	Force bool `json:"force,omitempty"`
	// Fingerprint names the key to retire; empty retires every old key.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// SPKeys performs the key operator commands on the service provider's key
// set, in the running server or on a store the command opened itself.
type SPKeys struct {
	store eherkenning.KeyStore
	// sp is the running server's service provider, which takes a change
	// at once; nil on a store the command opened.
	sp *eherkenning.ServiceProvider
	// log tells the running server's operator what changed; nil on a
	// store the command opened.
	log *zap.Logger
	now func() time.Time
}

// keyRefusal is an operation the key set refuses (bad input or the wrong
// moment), as opposed to a store that failed.
type keyRefusal struct{ error }

func (r keyRefusal) Unwrap() error { return r.error }

// OpenSPKeys opens the store at location for the key commands; close it
// when done.
func OpenSPKeys(location string) (*SPKeys, func() error, error) {
	e, closeEngine, err := openEngine(context.Background(), location, nil)
	if err != nil {
		return nil, nil, err
	}
	return &SPKeys{store: e, now: time.Now}, closeEngine, nil
}

// List returns the keys, current first.
func (k *SPKeys) List() ([]SPKeySummary, error) {
	set, err := eherkenning.LoadKeySet(k.store)
	if errors.Is(err, eherkenning.ErrNoKeySet) {
		return nil, keyRefusal{err}
	}
	return summarizeKeys(set), err
}

// Add stores a new next key: the PEM pair in req, or a generated one.
func (k *SPKeys) Add(req SPKeyRequest) ([]SPKeySummary, error) {
	now := k.now()
	return k.update(func(set eherkenning.KeySet) (eherkenning.KeySet, error) {
		if req.Cert == "" && req.Key == "" {
			key, cert, err := eherkenning.GenerateKeyPair("wijgate eherkenning " + now.UTC().Format("2006-01-02"))
			if err != nil {
				return set, err
			}
			return set.AddNext(key, cert, now)
		}
		key, cert, err := eherkenning.ParseNewKeyPair([]byte(req.Cert), []byte(req.Key), now)
		if err != nil {
			return set, keyRefusal{err}
		}
		return set.AddNext(key, cert, now)
	})
}

// Activate makes the next key sign.
func (k *SPKeys) Activate(force bool) ([]SPKeySummary, error) {
	now := k.now()
	return k.update(func(set eherkenning.KeySet) (eherkenning.KeySet, error) {
		return set.ActivateNext(now, eherkenning.MinPublished, force)
	})
}

// Retire removes the key with this fingerprint, or every old key.
func (k *SPKeys) Retire(fingerprint string) ([]SPKeySummary, error) {
	return k.update(func(set eherkenning.KeySet) (eherkenning.KeySet, error) {
		set, _, err := set.Retire(fingerprint)
		return set, err
	})
}

// update changes the stored set; what the set refuses is a keyRefusal.
func (k *SPKeys) update(change func(eherkenning.KeySet) (eherkenning.KeySet, error)) ([]SPKeySummary, error) {
	set, err := eherkenning.UpdateKeySet(k.store, func(s eherkenning.KeySet) (eherkenning.KeySet, error) {
		s, err := change(s)
		if err != nil && !errors.As(err, new(keyRefusal)) {
			err = keyRefusal{err}
		}
		return s, err
	})
	if errors.Is(err, eherkenning.ErrNoKeySet) {
		return nil, keyRefusal{err}
	}
	if err != nil {
		return nil, err
	}
	if k.sp != nil {
		if err := k.sp.ReloadKeys(); err != nil {
			return nil, err
		}
	}
	list := summarizeKeys(set)
	if k.log != nil {
		keys := make([]string, 0, len(list))
		for _, s := range list {
			keys = append(keys, s.Role+" "+s.Fingerprint)
		}
		k.log.Info("eHerkenning key set changed through the admin API", zap.Strings("keys", keys))
	}
	return list, nil
}

func summarizeKeys(set eherkenning.KeySet) []SPKeySummary {
	out := make([]SPKeySummary, 0, len(set.Keys))
	for _, k := range set.Keys {
		s := SPKeySummary{Role: k.Role, Fingerprint: k.Fingerprint(), Subject: k.SigningCert.Subject.String(),
			NotAfter: k.SigningCert.NotAfter.UTC(), Published: k.Published}
		if !k.EncryptionCert.Equal(k.SigningCert) {
			s.EncryptionFingerprint = eherkenning.KeyName(k.EncryptionCert)
		}
		out = append(out, s)
	}
	return out
}

// runningSPKeys returns the key commands over the running server's store.
func runningSPKeys() (*SPKeys, error) {
	v, err := caddy.ActiveContext().AppIfConfigured("wijgate")
	if err != nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("no wijgate app is running")}
	}
	app := v.(*App)
	if !app.ready.Load() {
		return nil, caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("the server has not opened its store yet; try again shortly")}
	}
	if app.serviceProvider == nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusConflict, Err: errors.New("this server's configuration has no eherkenning block, so it has no eHerkenning keys")}
	}
	return &SPKeys{store: app.engine, sp: app.serviceProvider, log: app.logger.Named("eherkenning"), now: now}, nil
}

// handleSPKeys serves the key commands:
//
//	GET  /wijgate/eherkenning/keys           list
//	POST /wijgate/eherkenning/keys           SPKeyRequest{cert,key}: add a next key
//	POST /wijgate/eherkenning/keys/activate  SPKeyRequest{force}: the next key signs
//	POST /wijgate/eherkenning/keys/retire    SPKeyRequest{fingerprint}: remove old keys
func handleSPKeys(w http.ResponseWriter, r *http.Request) error {
	ks, err := runningSPKeys()
	if err != nil {
		return err
	}
	var list []SPKeySummary
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/wijgate/eherkenning/keys":
		list, err = ks.List()
	case r.Method != http.MethodPost:
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed", r.Method)}
	default:
		var req SPKeyRequest
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
		switch r.URL.Path {
		case "/wijgate/eherkenning/keys":
			list, err = ks.Add(req)
		case "/wijgate/eherkenning/keys/activate":
			list, err = ks.Activate(req.Force)
		case "/wijgate/eherkenning/keys/retire":
			list, err = ks.Retire(req.Fingerprint)
		default:
			return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no key operation at %s", r.URL.Path)}
		}
	}
	if errors.As(err, new(keyRefusal)) {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	}
	return writeJSON(w, list)
}
