package portal

import (
	"net/http"

	"github.com/wijtechniek/wijgate/caddymodule/org"
)

// NoAccessInfo is what the guard knows when it refuses a logged-in person.
type NoAccessInfo struct {
	// App is the app's name for people.
	App string
	// Reason is why: "no_right", "admin_only" or "assurance".
	Reason          string
	OrgKvK, OrgName string
}

// noAccessData is the "no access" page's data.
type noAccessData struct {
	NoAccessInfo
	Admins []string
}

// PortalPath is the absolute URL of a portal page, for a guard on another
// host to send people to.
func (p *Portal) PortalPath(r *http.Request, path string) string {
	return p.portalURL(r, path)
}

// NoAccess renders the page that tells a logged-in person they may not
// use an app, and who in their organisation can change that.
func (p *Portal) NoAccess(w http.ResponseWriter, r *http.Request, info NoAccessInfo) {
	lang := requestLang(w, r)
	d := noAccessData{NoAccessInfo: info}
	if info.OrgKvK != "" {
		members, err := p.cfg.Orgs.Members(info.OrgKvK)
		if err == nil {
			for _, m := range members {
				if m.Role != org.RoleAdmin {
					continue
				}
				if a, err := p.cfg.Accounts.Account(m.AccountID); err == nil && !a.Disabled {
					d.Admins = append(d.Admins, a.Name+" <"+a.Email+">")
				}
			}
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	p.pages.render(w, r, http.StatusForbidden, "noaccess", &view{Lang: lang, Title: "noaccess.title", Data: d, Dashboard: p.portalURL(r, "/dashboard")})
}
