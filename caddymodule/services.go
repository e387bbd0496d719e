package caddymodule

import (
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/session"
	"github.com/wijtechniek/wijgate/caddymodule/store"
	"github.com/wijtechniek/wijgate/caddymodule/token"
)

// engine is a store engine: the storage of every service, the secrets the
// adapter keeps (cookie, code and SP keys, through token.KeyStore), and a
// health line for /healthz. This file and storepool.go are the only places
// that name an engine; swapping it means another implementation of these
// interfaces (the storage contract the services define) and its opening.
type engine interface {
	account.Store
	account.CodeStore
	account.CounterStore
	session.Store
	org.Store
	eherkenning.StateStore
	token.KeyStore
	// Health reports whether the engine takes writes, in a few words.
	Health() (ok bool, detail string)
}

var _ engine = (*store.Store)(nil)

// domainServices builds the account and organisation services over an
// engine: the server and the offline operator commands share them.
func domainServices(e engine, hasher *account.Hasher, auditRetention time.Duration) (*account.Service, *org.Service) {
	return &account.Service{Store: e, Hasher: hasher, Now: now},
		&org.Service{Store: e, Now: now, AuditRetention: auditRetention}
}

// OpenOperator opens the store in dir for the operator commands when no
// server runs on it; close releases it.
func OpenOperator(dir string) (op *Operator, close func() error, err error) {
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		return nil, nil, err
	}
	hasher, err := account.NewHasher(account.HasherOptions{})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	accounts, orgs := domainServices(st, hasher, 0)
	return &Operator{Accounts: accounts, Orgs: orgs}, st.Close, nil
}
