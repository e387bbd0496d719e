package eherkenning

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"
)

// ParkedLifetime bounds the hop from the ACS, where the broker's answer
// arrives cross-site, to the same-site page that collects it.
const ParkedLifetime = 5 * time.Minute

// ErrUnknownResult is returned by [ServiceProvider.CollectResult] (and
// [StateStore.TakeParkedResult]) when nothing is parked under the token,
// including when it was collected before or expired.
var ErrUnknownResult = errors.New("eherkenning: unknown or already collected result")

// ParkedResult is a verified answer awaiting the browser that started
// the login.
type ParkedResult struct {
	Result    Result
	ExpiresAt time.Time
}

// ParkResult keeps a verified result for ParkedLifetime and returns the
// one-time token that collects it. Only a hash of the token is stored,
// so a copy of the state cannot collect anything.
func (sp *ServiceProvider) ParkResult(ctx context.Context, r Result) (token string, err error) {
	token = rand.Text() + rand.Text()
	p := ParkedResult{Result: r, ExpiresAt: sp.cfg.Now().Add(ParkedLifetime)}
	if err := sp.state.ParkResult(ctx, parkedKey(token), p); err != nil {
		return "", wrapErr(CodeInternal, err, "parking a result")
	}
	return token, nil
}

// CollectResult returns and forgets the result parked under token, once;
// ErrUnknownResult when there is none, it was collected, or it expired.
func (sp *ServiceProvider) CollectResult(ctx context.Context, token string) (Result, error) {
	if token == "" {
		return Result{}, ErrUnknownResult
	}
	p, err := sp.state.TakeParkedResult(ctx, parkedKey(token))
	if err != nil {
		return Result{}, err
	}
	if !sp.cfg.Now().Before(p.ExpiresAt) {
		return Result{}, ErrUnknownResult
	}
	return p.Result, nil
}

func parkedKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
