package portal

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/mail"
	"github.com/wijtechniek/wijgate/caddymodule/observe"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// auditPageSize is how many audit entries one page of the admin page
// shows; older ones are on the next pages.
const auditPageSize = 50

// maxTargetInput caps the member or invitation ID in an action's URL.
const maxTargetInput = 64

// dashboardData is the dashboard's data.
type dashboardData struct {
	Memberships []org.Membership
	Active      *org.Membership
	Apps        []AppInfo
	// Reverify are the account's verifications to renew; Waiting the
	// memberships waiting for an admin to verify the company again.
	Reverify, Waiting []reverifyView
}

// memberView is a member as the admin page shows them.
type memberView struct {
	storage.Membership
	Name, Email, InvitedByName string
	Anchored                   bool
}

// orgAdminData is the admin page's data.
type orgAdminData struct {
	Org      storage.Organisation
	Members  []memberView
	Invites  []inviteView
	Audit    []auditView
	AllApps  []AppInfo
	MyID     string
	MayAdmin bool
	// AuditPage is the page of the audit log shown, from 1; NewerPage
	// and OlderPage are the neighbouring pages, 0 when there is none.
	AuditPage, NewerPage, OlderPage int
}

type auditView struct {
	storage.AuditEntry
	ActorName string
	// Text says in words what happened.
	Text string
}

// inviteView is a pending invitation with its apps' names for people.
type inviteView struct {
	storage.Invitation
	AppNames string
}

func (p *Portal) apps() []AppInfo {
	if p.cfg.Apps == nil {
		return nil
	}
	return p.cfg.Apps()
}

func (p *Portal) appNames() []string {
	var out []string
	for _, a := range p.apps() {
		out = append(out, a.Name)
	}
	return out
}

func (p *Portal) dashboard(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	a, s, ok := p.signedIn(w, r, "/dashboard")
	if !ok {
		return
	}
	ms, err := p.cfg.Orgs.Memberships(a.ID)
	if err != nil {
		p.serverError(w, r, lang, "reading memberships", err)
		return
	}
	d := dashboardData{Memberships: ms}
	d.Reverify, d.Waiting = p.reverifyNotices(lang, ms)
	if active, ok := org.Active(ms, s.ActiveOrg); ok {
		d.Active = &active
		granted := active.AppsFor(p.appNames())
		for _, app := range p.apps() {
			if slices.Contains(granted, app.Name) {
				d.Apps = append(d.Apps, app)
			}
		}
	}
	v := &view{Lang: lang, Title: "dashboard.title", CSRF: csrfToken(w, r),
		User: &userView{ID: a.ID, Email: a.Email, Name: a.Name}, Data: d}
	if r.URL.Query().Get("linked") != "" {
		v.Notice = lang.T("dashboard.linked")
	}
	p.pages.render(w, r, http.StatusOK, "dashboard", v)
}

// switchOrg sets the organisation the session acts for. Only an anchored
// membership of the account can be chosen.
func (p *Portal) switchOrg(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	if !csrfValid(r) {
		p.formExpired(w, r, lang)
		return
	}
	a, s, ok := p.signedIn(w, r, "/dashboard")
	if !ok {
		return
	}
	if err := parseForm(r, "kvk"); err != nil {
		p.badRequest(w, r, lang, err)
		return
	}
	kvk := r.PostFormValue("kvk")
	if !org.ValidKvK(kvk) {
		p.badValue(w, r, lang, "kvk", "orgadmin.badkvk")
		return
	}
	ms, err := p.cfg.Orgs.Memberships(a.ID)
	if err != nil {
		p.serverError(w, r, lang, "reading memberships", err)
		return
	}
	if i := slices.IndexFunc(ms, func(m org.Membership) bool { return m.KvK == kvk && m.Anchored }); i < 0 {
		p.forbidden(w, r, lang, a.ID, "switch to an organisation that is not the account's", kvk)
		return
	}
	if err := p.cfg.Sessions.SetActiveOrg(s.Key, kvk); err != nil {
		p.serverError(w, r, lang, "switching organisation", err)
		return
	}
	http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
}

// orgAdmin shows an organisation's members, invitations and audit log to
// its admins.
func (p *Portal) orgAdmin(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	a, s, ok := p.signedIn(w, r, r.URL.Path)
	if !ok {
		return
	}
	kvk := r.PathValue("kvk")
	if !org.ValidKvK(kvk) {
		p.badValue(w, r, lang, "kvk", "orgadmin.badkvk")
		return
	}
	page := 1
	if raw := r.URL.Query().Get("page"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			p.badValue(w, r, lang, "page", "orgadmin.badpage")
			return
		}
		page = n
	}
	if _, err := p.cfg.Orgs.RequireAdmin(a.ID, kvk, "view"); err != nil {
		p.forbidden(w, r, lang, a.ID, "view the admin page of an organisation", kvk)
		return
	}
	if p.refuseUnprovenAdmin(w, r, lang, a, s, kvk) {
		return
	}
	d, err := p.orgAdminData(lang, kvk, a.ID, page)
	if err != nil {
		p.serverError(w, r, lang, "reading an organisation", err)
		return
	}
	v := &view{Lang: lang, Title: "orgadmin.title", CSRF: csrfToken(w, r), Data: d,
		User: &userView{ID: a.ID, Email: a.Email, Name: a.Name}}
	switch r.URL.Query().Get("done") {
	case "invite":
		v.Notice = lang.T("orgadmin.invited")
	case "":
	default:
		v.Notice = lang.T("orgadmin.saved")
	}
	p.pages.render(w, r, http.StatusOK, "orgadmin", v)
}

// displayApps turns app names into the names people know, comma-separated.
func (p *Portal) displayApps(names []string) string {
	var out []string
	for _, app := range p.apps() {
		if slices.Contains(names, app.Name) {
			out = append(out, app.Display)
		}
	}
	return strings.Join(out, ", ")
}

// orgAdminData gathers the admin page, with the given page of the audit
// log.
func (p *Portal) orgAdminData(lang Lang, kvk, me string, page int) (orgAdminData, error) {
	o, err := p.cfg.Orgs.Organisation(kvk)
	if err != nil {
		return orgAdminData{}, err
	}
	d := orgAdminData{Org: o, AllApps: p.apps(), MyID: me, MayAdmin: true}
	members, err := p.cfg.Orgs.Members(kvk)
	if err != nil {
		return d, err
	}
	names := map[string]storage.Account{}
	name := func(id string) storage.Account {
		if a, ok := names[id]; ok {
			return a
		}
		a, _ := p.cfg.Accounts.Account(id)
		names[id] = a
		return a
	}
	for _, m := range members {
		anchored, err := p.cfg.Orgs.Anchored(m)
		if err != nil {
			return d, err
		}
		acct := name(m.AccountID)
		d.Members = append(d.Members, memberView{Membership: m, Name: acct.Name, Email: acct.Email,
			InvitedByName: name(m.InvitedBy).Name, Anchored: anchored})
	}
	invites, err := p.cfg.Orgs.Invitations(kvk)
	if err != nil {
		return d, err
	}
	for _, inv := range invites {
		d.Invites = append(d.Invites, inviteView{Invitation: inv, AppNames: p.displayApps(inv.Apps)})
	}
	entries, more, err := p.cfg.Orgs.Audit(kvk, (page-1)*auditPageSize, auditPageSize)
	if err != nil {
		return d, err
	}
	d.AuditPage = page
	if page > 1 {
		d.NewerPage = page - 1
		if len(entries) == 0 {
			// Beyond the end: back to the newest.
			d.NewerPage = 1
		}
	}
	if more {
		d.OlderPage = page + 1
	}
	for _, e := range entries {
		target := auditName(name, e.Target)
		detail := ""
		switch e.Action {
		case "set_apps", "invite":
			detail = p.displayApps(strings.Split(strings.TrimPrefix(e.Detail, "apps: "), ","))
			if detail == "" {
				detail = lang.T("audit.noapps")
			}
		case "set_role":
			detail = lang.T("role." + e.Detail)
		case "denied":
			detail = actionNames(lang, e.Detail)
		}
		key := "audit." + e.Action
		if e.Count > 1 {
			key = "audit.denied.many"
		}
		text := strings.NewReplacer("{target}", target, "{detail}", detail, "{count}", strconv.Itoa(e.Count),
			"{from}", e.At.Format("15:04"), "{until}", e.Until.Format("15:04")).Replace(lang.T(key))
		d.Audit = append(d.Audit, auditView{AuditEntry: e, ActorName: auditName(name, e.Actor), Text: text})
	}
	return d, nil
}

// actionNames says in words which actions a refusal entry names
// (comma-separated); an entry from before the names were kept shows its
// detail as written.
func actionNames(lang Lang, detail string) string {
	var out []string
	for _, a := range strings.Split(detail, ",") {
		if text, ok := catalog[lang]["audit.action."+a]; ok {
			out = append(out, text)
		} else {
			out = append(out, a)
		}
	}
	return strings.Join(out, ", ")
}

// orgAction handles the admin forms of an organisation. The organisation
// and the member come from the URL; the server checks the actor is an
// anchored admin of that organisation and the member belongs to it, so
// posted IDs of another organisation change nothing.
func (p *Portal) orgAction(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	if !csrfValid(r) {
		p.formExpired(w, r, lang)
		return
	}
	a, s, ok := p.signedIn(w, r, "/dashboard")
	if !ok {
		return
	}
	kvk, action, target := r.PathValue("kvk"), r.PathValue("action"), r.PathValue("target")
	if err := r.ParseForm(); err != nil {
		p.badRequest(w, r, lang, err)
		return
	}
	if !org.ValidKvK(kvk) {
		p.badValue(w, r, lang, "kvk", "orgadmin.badkvk")
		return
	}
	if action != "invite" && !validID(target) {
		p.badValue(w, r, lang, "target", "orgadmin.badtarget")
		return
	}
	if p.refuseUnprovenAdmin(w, r, lang, a, s, kvk) {
		return
	}
	// Only the fields each action reads are looked at; anything else a
	// form carries (say, role=admin on an apps form) is ignored.
	var err error
	switch action {
	case "invite":
		p.orgInvite(w, r, lang, a, kvk)
		return
	case "apps":
		err = p.cfg.Orgs.SetApps(a.ID, kvk, target, r.PostForm["apps"], p.appNames())
	case "role":
		err = p.cfg.Orgs.SetRole(a.ID, kvk, target, r.PostFormValue("role"))
	case "remove":
		err = p.cfg.Orgs.Remove(a.ID, kvk, target)
	case "withdraw":
		err = p.cfg.Orgs.Withdraw(a.ID, kvk, target)
	default:
		p.notFound(w, r)
		return
	}
	p.afterOrgAction(w, r, lang, a, kvk, action, err)
}

func (p *Portal) afterOrgAction(w http.ResponseWriter, r *http.Request, lang Lang, a storage.Account, kvk, action string, err error) {
	p.record(r, observe.Event{Kind: observe.OrganisationChange, Reason: action, Outcome: orgActionOutcome(err),
		Actor: a.ID, Subject: r.PathValue("target"), Organisation: kvk})
	switch {
	case err == nil:
		// The change reaches guards on the member's next request: the
		// write moved the member's version in the store, so no cache
		// trusts old rights.
		http.Redirect(w, r, "/org/"+kvk+"?done="+action, http.StatusSeeOther)
	case errors.Is(err, org.ErrForbidden):
		p.forbidden(w, r, lang, a.ID, action, kvk)
	case errors.Is(err, org.ErrLastAdmin):
		p.orgFormError(w, r, a, kvk, http.StatusConflict, &view{Lang: lang, FormError: lang.T("orgadmin.lastadmin")})
	case errors.Is(err, org.ErrUnknownApp):
		p.logger.Info("bad form", zap.String("path", r.URL.Path), zap.Error(err))
		p.orgFormError(w, r, a, kvk, http.StatusBadRequest, &view{Lang: lang, FormError: lang.T("orgadmin.unknownapp")})
	case errors.Is(err, org.ErrUnknownRole):
		p.logger.Info("bad form", zap.String("path", r.URL.Path), zap.Error(err))
		p.orgFormError(w, r, a, kvk, http.StatusBadRequest, &view{Lang: lang, FormError: lang.T("orgadmin.badrole")})
	default:
		p.serverError(w, r, lang, "organisation action "+action, err)
	}
}

// orgFormError shows the admin page again with the problem of a posted
// form: v carries the message (and the field's, and what was typed).
func (p *Portal) orgFormError(w http.ResponseWriter, r *http.Request, a storage.Account, kvk string, status int, v *view) {
	d, err := p.orgAdminData(v.Lang, kvk, a.ID, 1)
	if err != nil {
		p.serverError(w, r, v.Lang, "reading an organisation", err)
		return
	}
	v.Title, v.CSRF, v.Data = "orgadmin.title", csrfToken(w, r), d
	v.User = &userView{ID: a.ID, Email: a.Email, Name: a.Name}
	p.pages.render(w, r, status, "orgadmin", v)
}

func (p *Portal) orgInvite(w http.ResponseWriter, r *http.Request, lang Lang, a storage.Account, kvk string) {
	v := &view{Lang: lang, Values: map[string]string{}, Errors: map[string]string{}}
	email, ok := checkEmailField(v, r.PostFormValue("email"))
	if !ok {
		// Whether the actor may invite at all comes first.
		if _, err := p.cfg.Orgs.RequireAdmin(a.ID, kvk, "invite"); err != nil {
			p.afterOrgAction(w, r, lang, a, kvk, "invite", err)
			return
		}
		if _, cleared := v.Values["email"]; !cleared {
			v.Values["email"] = r.PostFormValue("email")
		}
		v.FormError = lang.T("errors.summary")
		p.orgFormError(w, r, a, kvk, http.StatusBadRequest, v)
		return
	}
	token, inv, err := p.cfg.Orgs.Invite(a.ID, kvk, email, r.PostForm["apps"], p.appNames())
	if err != nil {
		p.afterOrgAction(w, r, lang, a, kvk, "invite", err)
		return
	}
	o, _ := p.cfg.Orgs.Organisation(kvk)
	var appNames []string
	for _, app := range p.apps() {
		if slices.Contains(inv.Apps, app.Name) {
			appNames = append(appNames, app.Display)
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), sendTimeout)
	defer cancel()
	msg := mail.InvitationMessage(mail.Lang(lang), email, orgLabel(o), a.Name, p.portalURL(r, "/invite/"+token), appNames, inv.ExpiresAt)
	if err := p.cfg.Mailer.Send(ctx, msg); err != nil {
		p.logger.Error("sending an invitation failed", zap.String("kvk", kvk), zap.Error(err))
		// Without the mail the link is lost: take the invitation back.
		_ = p.cfg.Orgs.Withdraw(a.ID, kvk, inv.ID)
		p.orgFormError(w, r, a, kvk, http.StatusServiceUnavailable,
			&view{Lang: lang, FormError: lang.T("mail.failed"), Values: map[string]string{"email": email}})
		return
	}
	p.record(r, observe.Event{Kind: observe.OrganisationChange, Reason: "invite", Outcome: "ok", Actor: a.ID, Subject: inv.ID, Organisation: kvk})
	http.Redirect(w, r, "/org/"+kvk+"?done=invite", http.StatusSeeOther)
}

func orgLabel(o storage.Organisation) string {
	if o.Name != "" {
		return o.Name
	}
	return "KvK " + o.KvK
}

// invitationData is the invitation page's data.
type invitationData struct {
	Invitation storage.Invitation
	OrgName    string
	Apps       []string
	Token      string
	WrongEmail bool
}

func (p *Portal) invitationPage(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	token := r.PathValue("token")
	inv, err := p.cfg.Orgs.PendingInvitation(token)
	if err != nil {
		p.pages.render(w, r, http.StatusNotFound, "error", &view{Lang: lang, Title: "invite.title", Data: lang.T("invite.invalid")})
		return
	}
	a, _, ok := p.signedIn(w, r, "/invite/"+token)
	if !ok {
		return
	}
	o, _ := p.cfg.Orgs.Organisation(inv.KvK)
	d := invitationData{Invitation: inv, OrgName: orgLabel(o), Token: token, WrongEmail: a.Email != inv.Email}
	for _, app := range p.apps() {
		if slices.Contains(inv.Apps, app.Name) {
			d.Apps = append(d.Apps, app.Display)
		}
	}
	p.pages.render(w, r, http.StatusOK, "invite", &view{Lang: lang, Title: "invite.title", CSRF: csrfToken(w, r), Data: d,
		User: &userView{ID: a.ID, Email: a.Email, Name: a.Name}})
}

func (p *Portal) acceptInvitation(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	if !csrfValid(r) {
		p.formExpired(w, r, lang)
		return
	}
	a, s, ok := p.signedIn(w, r, "/invite/"+r.PathValue("token"))
	if !ok {
		return
	}
	inv, err := p.cfg.Orgs.Accept(r.PathValue("token"), a)
	p.record(r, observe.Event{Kind: observe.OrganisationChange, Reason: "accept", Outcome: orgActionOutcome(err),
		Actor: a.ID, Subject: inv.ID, Organisation: inv.KvK})
	switch {
	case errors.Is(err, org.ErrInvitationOtherEmail):
		p.logger.Warn("invitation used by another address", zap.String("account", a.ID), zap.String("kvk", inv.KvK))
		p.pages.render(w, r, http.StatusForbidden, "error", &view{Lang: lang, Title: "invite.title", Data: lang.T("invite.otheremail")})
		return
	case errors.Is(err, org.ErrInvitationInvalid):
		p.pages.render(w, r, http.StatusNotFound, "error", &view{Lang: lang, Title: "invite.title", Data: lang.T("invite.invalid")})
		return
	case err != nil:
		p.serverError(w, r, lang, "accepting an invitation", err)
		return
	}
	p.logger.Info("invitation accepted", zap.String("account", a.ID), zap.String("kvk", inv.KvK))
	if err := p.cfg.Sessions.SetActiveOrg(s.Key, inv.KvK); err != nil {
		p.logger.Warn("making the new organisation active", zap.Error(err))
	}
	http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
}

// forbidden answers an action on something that is not the actor's, and
// tells the operator, at most once a minute per actor; the organisation's
// audit log has the attempt when the actor is one of its members.
func (p *Portal) forbidden(w http.ResponseWriter, r *http.Request, lang Lang, actor, what, kvk string) {
	p.refusals.log(actor, zap.String("action", what), zap.String("kvk", kvk),
		zap.String("path", r.URL.Path), zap.String("remote", p.clientIP(r)))
	p.pages.render(w, r, http.StatusForbidden, "error", &view{Lang: lang, Title: "error.title", Data: lang.T("error.forbidden")})
}

// badValue answers a malformed value in the URL or a form that has no
// field on the page to show the message at.
func (p *Portal) badValue(w http.ResponseWriter, r *http.Request, lang Lang, field, message string) {
	p.logger.Info("bad value", zap.String("path", r.URL.Path), zap.String("field", field))
	p.pages.render(w, r, http.StatusBadRequest, "error", &view{Lang: lang, Title: "error.title", Data: lang.T(message)})
}

// validID reports whether s can be a member's account ID or an
// invitation's ID: short, and only the characters those are made of.
func validID(s string) bool {
	if s == "" || len(s) > maxTargetInput {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (p *Portal) badRequest(w http.ResponseWriter, r *http.Request, lang Lang, err error) {
	p.logger.Info("bad form", zap.String("path", r.URL.Path), zap.Error(err))
	p.pages.render(w, r, http.StatusBadRequest, "error", &view{Lang: lang, Title: "error.title", Data: lang.T("form.unknown")})
}

// formatDate shows a date for people.
func formatDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("02-01-2006")
}
