package portal

import (
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// reverifyReturnPrefix starts the ReturnTo of an eHerkenning login that
// an admin started to verify a company again. A "no machtiging" answer
// names no company, so the tracked request has to: the company in it is
// the one whose anchor that answer ends.
const reverifyReturnPrefix = "/dashboard?reverified="

func reverifyReturn(kvk string) string { return reverifyReturnPrefix + kvk }

// reverifyKvK is the company a login was started to verify again; "" for
// any other login.
func reverifyKvK(returnTo string) string {
	kvk, ok := strings.CutPrefix(returnTo, reverifyReturnPrefix)
	if !ok || !org.ValidKvK(kvk) {
		return ""
	}
	return kvk
}

// ehReturnTo is the ReturnTo of a login started from a form: "Opnieuw
// verifiëren" names a company the account holds an eh3 membership of.
func (p *Portal) ehReturnTo(r *http.Request, accountID string) string {
	kvk := r.PostFormValue("kvk")
	if !org.ValidKvK(kvk) {
		return "/dashboard"
	}
	if _, _, err := p.cfg.Orgs.Verification(kvk, accountID); err != nil {
		return "/dashboard"
	}
	return reverifyReturn(kvk)
}

// endAnchorOnRefusal ends the anchor a "no machtiging" answer was about:
// the company the refused login was started to verify again. ended is
// false for any other refusal. The answer is the broker's, signed, and
// belongs to a request the account started from its own session with the
// form's token; it can only take away.
func (p *Portal) endAnchorOnRefusal(r *http.Request, err error) (ended bool, _ error) {
	var e *eherkenning.Error
	if eherkenning.ErrorCode(err) != eherkenning.CodeNoAuthorization || !errors.As(err, &e) || e.Request == nil {
		return false, nil
	}
	kvk := reverifyKvK(e.Request.ReturnTo)
	if kvk == "" {
		return false, nil
	}
	ended, err = p.cfg.Orgs.EndAnchor(e.Request.AccountID, kvk)
	if ended {
		p.logger.Warn("eHerkenning anchor ended: the broker answered that the person holds no machtiging for the company",
			zap.String("account", e.Request.AccountID), zap.String("kvk", kvk), zap.String("remote", p.clientIP(r)))
	}
	return ended, err
}

// reverifyView is an eh3 membership of the account that must be verified
// again, with the text that says so.
type reverifyView struct {
	KvK, Message string
}

// reverifyNotices are the account's eh3 memberships whose verification
// is due, lapsed or ended, and the memberships that wait for an admin to
// verify the company again.
func (p *Portal) reverifyNotices(lang Lang, ms []org.Membership) (own, waiting []reverifyView) {
	now := p.now()
	for _, m := range ms {
		name := orgLabel(m.Organisation)
		if m.Anchor == org.AnchorEH3 {
			st := p.cfg.Orgs.AnchorStatus(m.Membership, now)
			if st == org.AnchorHolds {
				continue
			}
			text := strings.NewReplacer("{org}", name, "{date}", formatDate(p.cfg.Orgs.LapsesAt(m.Membership))).
				Replace(lang.T("reverify." + st.String()))
			own = append(own, reverifyView{KvK: m.KvK, Message: text})
			continue
		}
		if m.Lapsed {
			waiting = append(waiting, reverifyView{KvK: m.KvK, Message: strings.ReplaceAll(lang.T("reverify.waiting"), "{org}", name)})
		}
	}
	return own, waiting
}

// reverifyPageData is the after-login page's data.
type reverifyPageData struct {
	Notices []reverifyView
	// Continue is where the person was going.
	Continue string
}

// reverifyAfterLogin shows an admin whose verification must be renewed
// a page that says so, with "Opnieuw verifiëren" and a way on to where
// they were going, and reports whether it did.
func (p *Portal) reverifyAfterLogin(w http.ResponseWriter, r *http.Request, lang Lang, a storage.Account, ret string) bool {
	if ret == ehStartPath {
		return false
	}
	ms, err := p.cfg.Orgs.Memberships(a.ID)
	if err != nil {
		p.logger.Warn("reading memberships for the re-verification notice", zap.String("account", a.ID), zap.Error(err))
		return false
	}
	own, _ := p.reverifyNotices(lang, ms)
	if len(own) == 0 {
		return false
	}
	p.pages.render(w, r, http.StatusOK, "reverify", &view{Lang: lang, Title: "reverify.title", CSRF: csrfToken(w, r),
		User: &userView{ID: a.ID, Email: a.Email, Name: a.Name},
		Data: reverifyPageData{Notices: own, Continue: orDashboard(ret)}})
	return true
}
