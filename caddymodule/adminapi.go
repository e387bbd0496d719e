package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/privacy"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI serves the operator commands on Caddy's admin endpoint, so
// `wijgate accounts ...` works while the server runs (badger lets only one
// process open the store):
//
//	GET  /wijgate/accounts          list accounts
//	POST /wijgate/accounts          {"email","name","password"}: add one
//	POST /wijgate/accounts/disable  {"email"}: disable one, ending its sessions
//	POST /wijgate/accounts/reset-factors {"email"}: remove its second factors, ending its sessions
//	POST /wijgate/accounts/export   {"email"}: everything held about one (privacy.Export)
//	POST /wijgate/accounts/delete   {"email"}: remove one and everything kept for it
//	GET  /wijgate/orgs              list organisations
//	GET  /wijgate/orgs/<kvk>        one organisation with its members
//	GET  /wijgate/backup            a backup of the store, streamed
//	/wijgate/eherkenning/keys...    the SP's key set (spkeys.go)
//	/wijgate/token/keys...          the identity-token keys (tokenkeys.go)
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.wijgate",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Routes returns the admin routes.
func (adminAPI) Routes() []caddy.AdminRoute {
	return auditedRoutes([]caddy.AdminRoute{
		{Pattern: "/wijgate/accounts", Handler: caddy.AdminHandlerFunc(handleAccounts)},
		{Pattern: "/wijgate/accounts/disable", Handler: caddy.AdminHandlerFunc(handleDisable)},
		{Pattern: "/wijgate/accounts/reset-factors", Handler: caddy.AdminHandlerFunc(handleResetFactors)},
		{Pattern: "/wijgate/accounts/export", Handler: caddy.AdminHandlerFunc(handleExport)},
		{Pattern: "/wijgate/accounts/delete", Handler: caddy.AdminHandlerFunc(handleDelete)},
		{Pattern: "/wijgate/orgs", Handler: caddy.AdminHandlerFunc(handleOrgs)},
		{Pattern: "/wijgate/orgs/", Handler: caddy.AdminHandlerFunc(handleOrgs)},
		{Pattern: "/wijgate/backup", Handler: caddy.AdminHandlerFunc(handleBackup)},
		{Pattern: "/wijgate/eherkenning/keys", Handler: caddy.AdminHandlerFunc(handleSPKeys)},
		{Pattern: "/wijgate/eherkenning/keys/", Handler: caddy.AdminHandlerFunc(handleSPKeys)},
		{Pattern: "/wijgate/token/keys", Handler: caddy.AdminHandlerFunc(handleTokenKeys)},
		{Pattern: "/wijgate/token/keys/", Handler: caddy.AdminHandlerFunc(handleTokenKeys)},
	})
}

// AccountRequest is the admin API's body for adding or disabling.
type AccountRequest struct {
	Email    string `json:"email"`
	Name     string `json:"name,omitempty"`
	Password string `json:"password,omitempty"`
}

// AccountSummary is how the operator commands show an account; it never
// carries the password hash.
type AccountSummary struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
}

// Operator performs the operator commands on a store, either inside the
// running server (admin API) or on a store opened by the command itself.
type Operator struct {
	Accounts *account.Service
	Orgs     *org.Service
	Privacy  *privacy.Service
}

// AddAccount creates an account with the password rules applied.
func (o *Operator) AddAccount(req AccountRequest) (AccountSummary, error) {
	a, err := o.Accounts.Create(context.Background(), req.Email, req.Name, req.Password, "nl")
	return summarize(a), err
}

// ListAccounts returns every account.
func (o *Operator) ListAccounts() ([]AccountSummary, error) {
	all, err := o.Accounts.Accounts()
	out := make([]AccountSummary, 0, len(all))
	for _, a := range all {
		out = append(out, summarize(a))
	}
	return out, err
}

// DisableAccount stops an account from logging in and ends its sessions at
// once.
func (o *Operator) DisableAccount(email string) (AccountSummary, error) {
	a, err := o.Accounts.Disable(email)
	if err != nil {
		return AccountSummary{}, err
	}
	return summarize(a), nil
}

// RemoveSecondFactors takes every second factor off an account and ends
// its sessions (account.Service.RemoveSecondFactors).
func (o *Operator) RemoveSecondFactors(email string) (AccountSummary, error) {
	a, err := o.Accounts.RemoveSecondFactors(email)
	if errors.Is(err, storage.ErrNotFound) {
		return AccountSummary{}, fmt.Errorf("no account for %s: %w", email, err)
	}
	if err != nil {
		return AccountSummary{}, err
	}
	return summarize(a), nil
}

// OrgSummary is how the operator commands show an organisation.
type OrgSummary struct {
	KvK       string          `json:"kvk"`
	Name      string          `json:"name"`
	RSIN      string          `json:"rsin,omitempty"`
	Branch    string          `json:"branch,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	Members   []MemberSummary `json:"members,omitempty"`
}

// MemberSummary is one membership as the operator commands show it.
type MemberSummary struct {
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Anchor    string    `json:"anchor"`
	Level     string    `json:"level,omitempty"`
	Apps      []string  `json:"apps,omitempty"`
	Since     time.Time `json:"since"`
	InvitedBy string    `json:"invited_by,omitempty"`
}

// ListOrgs returns every organisation, without members.
func (o *Operator) ListOrgs() ([]OrgSummary, error) {
	all, err := o.Orgs.Organisations()
	out := make([]OrgSummary, 0, len(all))
	for _, g := range all {
		out = append(out, OrgSummary{KvK: g.KvK, Name: g.Name, RSIN: g.RSIN, Branch: g.Branch, CreatedAt: g.CreatedAt})
	}
	return out, err
}

// ShowOrg returns one organisation with its members.
func (o *Operator) ShowOrg(kvk string) (OrgSummary, error) {
	g, err := o.Orgs.Organisation(kvk)
	if err != nil {
		return OrgSummary{}, err
	}
	out := OrgSummary{KvK: g.KvK, Name: g.Name, RSIN: g.RSIN, Branch: g.Branch, CreatedAt: g.CreatedAt}
	members, err := o.Orgs.Members(kvk)
	if err != nil {
		return out, err
	}
	for _, m := range members {
		a, _ := o.Accounts.Account(m.AccountID)
		var inviter string
		if m.InvitedBy != "" {
			i, _ := o.Accounts.Account(m.InvitedBy)
			inviter = i.Email
		}
		out.Members = append(out.Members, MemberSummary{Email: a.Email, Name: a.Name, Role: m.Role, Anchor: m.Anchor,
			Level: m.Level, Apps: m.Apps, Since: m.Since, InvitedBy: inviter})
	}
	return out, nil
}

func summarize(a storage.Account) AccountSummary {
	return AccountSummary{ID: a.ID, Email: a.Email, Name: a.Name, Disabled: a.Disabled, CreatedAt: a.CreatedAt}
}

// runningOperator returns an Operator over the running config's app.
func runningOperator() (*Operator, error) {
	v, err := caddy.ActiveContext().AppIfConfigured("wijgate")
	if err != nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("no wijgate app is running")}
	}
	app := v.(*App)
	return &Operator{Accounts: app.accounts, Orgs: app.orgs, Privacy: app.privacy}, nil
}

func handleAccounts(w http.ResponseWriter, r *http.Request) error {
	op, err := runningOperator()
	if err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet:
		list, err := op.ListAccounts()
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
		}
		return writeJSON(w, list)
	case http.MethodPost:
		var req AccountRequest
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
		a, err := op.AddAccount(req)
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
		}
		return writeJSON(w, a)
	}
	return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed", r.Method)}
}

func handleDisable(w http.ResponseWriter, r *http.Request) error {
	return changeAccount(w, r, (*Operator).DisableAccount)
}

func handleResetFactors(w http.ResponseWriter, r *http.Request) error {
	return changeAccount(w, r, (*Operator).RemoveSecondFactors)
}

// changeAccount answers a POST naming an account by email with what change
// made of it.
func changeAccount(w http.ResponseWriter, r *http.Request, change func(*Operator, string) (AccountSummary, error)) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed", r.Method)}
	}
	op, err := runningOperator()
	if err != nil {
		return err
	}
	var req AccountRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	a, err := change(op, req.Email)
	if errors.Is(err, storage.ErrNotFound) {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no account for %s", req.Email)}
	}
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	return writeJSON(w, a)
}

func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("decoding request: %w", err)}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}

func handleOrgs(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed", r.Method)}
	}
	op, err := runningOperator()
	if err != nil {
		return err
	}
	if kvk := strings.TrimPrefix(r.URL.Path, "/wijgate/orgs/"); kvk != r.URL.Path && kvk != "" {
		o, err := op.ShowOrg(kvk)
		if errors.Is(err, storage.ErrNotFound) {
			return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no organisation with KvK %s", kvk)}
		}
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
		}
		return writeJSON(w, o)
	}
	list, err := op.ListOrgs()
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	}
	return writeJSON(w, list)
}

// Interface guards
var _ caddy.AdminRouter = adminAPI{}
