package portal

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/contract"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// flowCookie finds the server-side state of a multi-step form.
const flowCookie = contract.FlowCookie

// flowLifetime bounds how long a registration or reset may take.
const flowLifetime = 30 * time.Minute

// Flow stages.
const (
	stageEmail    = "email"
	stageCode     = "code"
	stageVerified = "verified"
)

// loadFlow returns the browser's flow for purpose, or a fresh one (not yet
// stored) when it has none or another purpose's.
func (p *Portal) loadFlow(r *http.Request, purpose string) storage.Flow {
	if c, err := r.Cookie(flowCookie); err == nil && len(c.Value) == 26 {
		f, err := p.cfg.Accounts.Flow(flowKey(c.Value))
		if err == nil && f.Purpose == purpose && p.now().Before(f.ExpiresAt) {
			return f
		}
	}
	now := p.now()
	return storage.Flow{Purpose: purpose, Stage: stageEmail, CreatedAt: now, ExpiresAt: now.Add(flowLifetime)}
}

// saveFlow stores the flow, giving the browser a cookie for it the first
// time.
func (p *Portal) saveFlow(w http.ResponseWriter, r *http.Request, f *storage.Flow) error {
	if f.ID == "" {
		token := rand.Text()
		f.ID = flowKey(token)
		http.SetCookie(w, &http.Cookie{
			Name: flowCookie, Value: token, Path: "/",
			Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
			MaxAge: int(flowLifetime / time.Second),
		})
	}
	return p.cfg.Accounts.SaveFlow(*f)
}

// endFlow forgets the flow.
func (p *Portal) endFlow(w http.ResponseWriter, f storage.Flow) error {
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: "", Path: "/", Secure: true, HttpOnly: true, MaxAge: -1})
	if f.ID == "" {
		return nil
	}
	err := p.cfg.Accounts.EndFlow(f.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}

func flowKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
