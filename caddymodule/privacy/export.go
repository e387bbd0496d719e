package privacy

import (
	"strconv"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// ExportVersion is the version of the export's JSON shape; it moves when
// a field changes meaning or goes away (added fields do not move it).
const ExportVersion = 1

// auditBatch is how many audit entries an export reads at a time.
const auditBatch = 500

// Export is everything held about one account, as the person downloads
// it. Every field is copied by name from the records, never by
// marshalling a record, so nothing secret (the password hash, session
// keys, code hashes, invitation tokens) can reach it by accident.
type Export struct {
	Version    int       `json:"version"`
	ExportedAt time.Time `json:"exported_at"`
	Account    Account   `json:"account"`
	// Factors are the second factors and passkeys the account holds,
	// described without their secrets.
	Factors             []FactorSummary `json:"factors"`
	Memberships         []Membership    `json:"memberships"`
	Sessions            []Session       `json:"sessions"`
	InvitationsSent     []Invitation    `json:"invitations_sent"`
	InvitationsReceived []Invitation    `json:"invitations_received"`
	// Audit are the entries of the account's organisations' logs that
	// name it, as actor or as target.
	Audit []AuditEntry `json:"audit"`
}

// Account is the account record without its credentials.
type Account struct {
	ID                string    `json:"id"`
	Email             string    `json:"email"`
	Name              string    `json:"name"`
	Language          string    `json:"language,omitempty"`
	Disabled          bool      `json:"disabled"`
	CreatedAt         time.Time `json:"created_at"`
	PasswordChangedAt time.Time `json:"password_changed_at"`
}

// FactorSummary describes one second factor or passkey: its kind
// ("passkey", "totp", "recovery-codes"), the name the person gave it and
// when it was added and last used; never its secret or public key.
type FactorSummary struct {
	Kind       string    `json:"kind"`
	Name       string    `json:"name,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// Membership is one organisation the account acts for.
type Membership struct {
	KvK          string `json:"kvk"`
	Organisation string `json:"organisation"`
	Role         string `json:"role"`
	// Apps are the apps granted to a member; an admin may use every app.
	Apps []string `json:"apps"`
	// Anchor is "eh3" (verified with eHerkenning) or "invited"; Anchored
	// says whether the membership rests on eHerkenning now.
	Anchor   string `json:"anchor"`
	Anchored bool   `json:"anchored"`
	Level    string `json:"level,omitempty"`
	// EHerkenningPseudonym is what the broker called the person.
	EHerkenningPseudonym string    `json:"eherkenning_pseudonym,omitempty"`
	InvitedBy            string    `json:"invited_by,omitempty"`
	Since                time.Time `json:"since"`
	VerifiedAt           time.Time `json:"verified_at,omitzero"`
}

// Session is one live login, without the key that would open it.
type Session struct {
	StartedAt  time.Time `json:"started_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	UserAgent  string    `json:"user_agent,omitempty"`
	Address    string    `json:"address,omitempty"`
	// Methods are how the person proved who they are (RFC 8176 amr).
	Methods      []string `json:"methods,omitempty"`
	Organisation string   `json:"active_organisation,omitempty"`
}

// Invitation is a pending invitation, without the link's token.
type Invitation struct {
	KvK          string    `json:"kvk"`
	Organisation string    `json:"organisation"`
	Email        string    `json:"email"`
	Apps         []string  `json:"apps"`
	InvitedBy    string    `json:"invited_by"`
	CreatedAt    time.Time `json:"created_at"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// AuditEntry is one line of an organisation's log that names the account.
type AuditEntry struct {
	KvK    string    `json:"kvk"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Count  int       `json:"count,omitempty"`
	Until  time.Time `json:"until,omitzero"`
}

// Export gathers everything held about the account.
func (s *Service) Export(accountID string) (Export, error) {
	a, err := s.Accounts.Account(accountID)
	if err != nil {
		return Export{}, err
	}
	x := Export{
		Version:    ExportVersion,
		ExportedAt: s.now().UTC(),
		Account: Account{ID: a.ID, Email: a.Email, Name: a.Name, Language: a.Lang, Disabled: a.Disabled,
			CreatedAt: a.CreatedAt, PasswordChangedAt: a.PasswordChangedAt},
		Factors:             factors(a),
		Memberships:         []Membership{},
		Sessions:            []Session{},
		InvitationsSent:     []Invitation{},
		InvitationsReceived: []Invitation{},
		Audit:               []AuditEntry{},
	}
	ms, err := s.Orgs.Memberships(accountID)
	if err != nil {
		return Export{}, err
	}
	orgNames := map[string]string{}
	for _, m := range ms {
		orgNames[m.KvK] = m.Organisation.Name
		x.Memberships = append(x.Memberships, Membership{KvK: m.KvK, Organisation: m.Organisation.Name,
			Role: m.Role, Apps: nonNil(m.Apps), Anchor: m.Anchor, Anchored: m.Anchored, Level: m.Level,
			EHerkenningPseudonym: m.Pseudonym, InvitedBy: m.InvitedBy, Since: m.Since, VerifiedAt: m.VerifiedAt})
		if err := s.exportOrganisation(&x, m, a); err != nil {
			return Export{}, err
		}
	}
	sessions, err := s.Store.AccountSessions(accountID)
	if err != nil {
		return Export{}, err
	}
	for _, ss := range sessions {
		x.Sessions = append(x.Sessions, Session{StartedAt: ss.CreatedAt, LastSeenAt: ss.LastSeen, ExpiresAt: ss.ExpiresAt,
			UserAgent: ss.UserAgent, Address: ss.Address, Methods: ss.AMR, Organisation: ss.ActiveOrg})
	}
	received, err := s.Store.InvitationsFor(a.Email)
	if err != nil {
		return Export{}, err
	}
	for _, inv := range received {
		name, ok := orgNames[inv.KvK]
		if !ok {
			o, err := s.Orgs.Organisation(inv.KvK)
			if err != nil {
				return Export{}, err
			}
			name = o.Name
		}
		x.InvitationsReceived = append(x.InvitationsReceived, invitation(inv, name))
	}
	return x, nil
}

// exportOrganisation adds what one organisation of the account holds
// about it: the invitations it sent that are pending, and the log entries
// that name it.
func (s *Service) exportOrganisation(x *Export, m org.Membership, a storage.Account) error {
	invs, err := s.Orgs.Invitations(m.KvK)
	if err != nil {
		return err
	}
	for _, inv := range invs {
		if inv.InvitedBy == a.ID {
			x.InvitationsSent = append(x.InvitationsSent, invitation(inv, m.Organisation.Name))
		}
	}
	for skip := 0; ; skip += auditBatch {
		entries, more, err := s.Orgs.Audit(m.KvK, skip, auditBatch)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Actor == a.ID || e.Target == a.ID || e.Target == a.Email {
				x.Audit = append(x.Audit, AuditEntry{KvK: e.KvK, At: e.At, Actor: e.Actor, Action: e.Action,
					Target: e.Target, Detail: e.Detail, Count: e.Count, Until: e.Until})
			}
		}
		if !more {
			return nil
		}
	}
}

func invitation(inv storage.Invitation, orgName string) Invitation {
	return Invitation{KvK: inv.KvK, Organisation: orgName, Email: inv.Email, Apps: nonNil(inv.Apps),
		InvitedBy: inv.InvitedBy, CreatedAt: inv.CreatedAt, ExpiresAt: inv.ExpiresAt}
}

// factors describes the account's second factors by kind, name and
// dates; the secrets, keys and code hashes stay out. An authenticator
// app's last use is the start of the time step of its last accepted code.
func factors(a storage.Account) []FactorSummary {
	out := []FactorSummary{}
	if a.TOTP != nil {
		f := FactorSummary{Kind: "totp", CreatedAt: a.TOTP.CreatedAt}
		if a.TOTP.LastStep > 0 {
			f.LastUsedAt = time.Unix(a.TOTP.LastStep*account.TOTPPeriod, 0).UTC()
		}
		out = append(out, f)
	}
	if len(a.RecoveryCodes) > 0 {
		out = append(out, FactorSummary{Kind: "recovery-codes", Name: strconv.Itoa(len(a.RecoveryCodes)) + " unused", CreatedAt: a.RecoveryCodesAt})
	}
	for _, pk := range a.Passkeys {
		out = append(out, FactorSummary{Kind: "passkey", Name: pk.Name, CreatedAt: pk.CreatedAt, LastUsedAt: pk.LastUsedAt})
	}
	return out
}

// nonNil makes an absent list an empty one, so the JSON shape holds a
// list wherever one can be.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
