package caddymodule

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/privacy"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// accountByEmail finds the account an operator names by its address.
func (o *Operator) accountByEmail(email string) (storage.Account, error) {
	norm, err := account.NormalizeEmail(email)
	if err != nil {
		return storage.Account{}, err
	}
	a, err := o.Accounts.AccountByEmail(norm)
	if errors.Is(err, storage.ErrNotFound) {
		return a, fmt.Errorf("no account for %s: %w", norm, err)
	}
	return a, err
}

// ExportAccount gathers everything held about the account with this
// address.
func (o *Operator) ExportAccount(email string) (privacy.Export, error) {
	a, err := o.accountByEmail(email)
	if err != nil {
		return privacy.Export{}, err
	}
	return o.Privacy.Export(a.ID)
}

// DeleteAccount removes the account with this address and everything kept
// for it; a *privacy.BlockedError names the organisations that must get
// another verified admin first.
func (o *Operator) DeleteAccount(email string) (AccountSummary, error) {
	a, err := o.accountByEmail(email)
	if err != nil {
		return AccountSummary{}, err
	}
	a, err = o.Privacy.Delete(a.ID)
	if err != nil {
		return AccountSummary{}, err
	}
	return summarize(a), nil
}

func handleExport(w http.ResponseWriter, r *http.Request) error {
	return handlePrivacy(w, r, func(op *Operator, email string) (any, error) { return op.ExportAccount(email) })
}

func handleDelete(w http.ResponseWriter, r *http.Request) error {
	return handlePrivacy(w, r, func(op *Operator, email string) (any, error) { return op.DeleteAccount(email) })
}

// handlePrivacy answers an export or deletion by email: 404 for no such
// account, 409 for a refused deletion, 400 for an unusable address.
func handlePrivacy(w http.ResponseWriter, r *http.Request, do func(*Operator, string) (any, error)) error {
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
	result, err := do(op, req.Email)
	var blocked *privacy.BlockedError
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: err}
	case errors.As(err, &blocked):
		return caddy.APIError{HTTPStatus: http.StatusConflict, Err: err}
	case errors.Is(err, account.ErrEmailInvalid):
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("%q: %w", req.Email, err)}
	case err != nil:
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	}
	return writeJSON(w, result)
}
