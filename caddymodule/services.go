package caddymodule

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/engine"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/pgstore"
	"github.com/wijtechniek/wijgate/caddymodule/privacy"
	"github.com/wijtechniek/wijgate/caddymodule/store"
	"go.uber.org/zap"
)

var (
	_ engine.Engine = (*store.Store)(nil)
	_ engine.Engine = (*pgstore.Store)(nil)
)

// domainServices builds the account and organisation services over an
// engine: the server and the offline operator commands share them.
func domainServices(e engine.Engine, hasher *account.Hasher, auditRetention time.Duration) (*account.Service, *org.Service) {
	return &account.Service{Store: e, Hasher: hasher, Now: now},
		&org.Service{Store: e, Now: now, AuditRetention: auditRetention}
}

// privacyService builds the export and deletion of accounts over an
// engine, for the portal and the operator commands.
func privacyService(e engine.Engine, accounts *account.Service, orgs *org.Service) *privacy.Service {
	return &privacy.Service{Accounts: accounts, Orgs: orgs, Store: e, Now: now}
}

// isPostgres reports whether a storage location names a PostgreSQL
// database rather than a badger directory.
func isPostgres(location string) bool {
	return strings.HasPrefix(location, "postgres://") || strings.HasPrefix(location, "postgresql://")
}

// ResolveStorage turns the storage setting into the location opened:
// placeholders replaced, a badger directory made absolute (the default one
// when the setting is empty), a PostgreSQL URL left as it is.
func ResolveStorage(setting string) (string, error) {
	location := caddy.NewReplacer().ReplaceAll(setting, "")
	if isPostgres(location) {
		return location, nil
	}
	if location == "" {
		location = filepath.Join(caddy.AppDataDir(), "wijgate")
	}
	dir, err := filepath.Abs(location)
	if err != nil {
		return "", fmt.Errorf("storage %q: %w", setting, err)
	}
	return dir, nil
}

// RedactStorage is a storage location fit for a log line or a message: a
// URL's password is masked.
func RedactStorage(location string) string {
	if !isPostgres(location) {
		return location
	}
	u, err := url.Parse(location)
	if err != nil {
		return "postgres://(unreadable URL)"
	}
	return u.Redacted()
}

// openEngine opens the engine at a resolved storage location, outside the
// pool: for the operator commands and for copying between engines.
func openEngine(ctx context.Context, location string, logger *zap.Logger) (engine.Engine, func() error, error) {
	if isPostgres(location) {
		st, err := pgstore.Open(ctx, pgstore.Options{URL: location, Logger: logger})
		if err != nil {
			return nil, nil, err
		}
		return st, st.Close, nil
	}
	st, err := store.Open(store.Options{Dir: location})
	if err != nil {
		return nil, nil, err
	}
	return st, st.Close, nil
}

// OpenOperator opens the storage at a resolved location for the operator
// commands when no server answers; close releases it.
func OpenOperator(location string) (op *Operator, close func() error, err error) {
	e, closeEngine, err := openEngine(context.Background(), location, nil)
	if err != nil {
		return nil, nil, err
	}
	hasher, err := account.NewHasher(account.HasherOptions{})
	if err != nil {
		closeEngine()
		return nil, nil, err
	}
	accounts, orgs := domainServices(e, hasher, 0)
	return &Operator{Accounts: accounts, Orgs: orgs, Privacy: privacyService(e, accounts, orgs)}, closeEngine, nil
}
