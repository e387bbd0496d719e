package caddymodule

// Browser tests of the organisation flows, in Chromium through the
// broker simulator (issue 4) and the admin pages (issue 5): a person
// follows the manual from "Start hier" to "Jouw account is nu Admin",
// links a second company and switches between them; an admin invites a
// colleague, who registers through the invitation in a browser of their
// own, opens the Declaratie app and is refused once the right is taken
// back. The helpers of browser_test.go do the clicking and typing; the
// screenshots are numbered from 50 so they follow that file's.

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// flowsCaddyfile is the portal, the simulator at /ehsim/ and two guarded
// apps with links on the dashboard: /declaratie/ and /website/.
const flowsCaddyfile = "browserflows.caddyfile"

// album numbers the screenshots of several browsers in the order of the
// steps, so that the files read as one story.
type album struct{ next int }

// see is chrome.see under the album's next number; the name says whose
// browser it is.
func (a *album) see(c *chrome, name string) view {
	c.t.Helper()
	c.next = a.next
	v := c.see(name)
	a.next = c.next
	return v
}

// settleOn waits until the browser rests on path with the page loaded.
// Redirects and the self-submitting SAML form take several loads, and a
// click waits only for the first of them.
func (c *chrome) settleOn(path string) {
	c.t.Helper()
	type state struct {
		Path  string `json:"path"`
		Ready string `json:"ready"`
	}
	var last state
	deadline := time.Now().Add(stepTimeout)
	for {
		ctx, cancel := context.WithTimeout(c.ctx, time.Second)
		s, err := chromedp.Run(ctx, chromedp.Evaluate[state](`({path: location.pathname, ready: document.readyState})`))
		cancel()
		if err == nil {
			last = s
			if s.Path == path && s.Ready == "complete" {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the browser did not arrive at %s within %s; it is at %s (%s)", path, stepTimeout, last.Path, last.Ready)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// selectOption picks the option with this visible text in the drop-down
// list with this label.
func (c *chrome) selectOption(label, option string) {
	c.t.Helper()
	ok := eval[bool](c, `((label, option) => {
		const l = [...document.querySelectorAll("label")].find(l => l.innerText.trim() === label);
		const s = l && document.getElementById(l.htmlFor);
		if (!s || s.tagName !== "SELECT") return false;
		const o = [...s.options].find(o => o.text.trim() === option);
		if (!o) return false;
		s.value = o.value;
		s.dispatchEvent(new Event("change", {bubbles: true}));
		return s.value === o.value;
	})(`+js(label)+`, `+js(option)+`)`)
	c.expect("choosing "+option, ok, "no drop-down list %q with the option %q", label, option)
}

// checkState is a radio button or check box found by an XPath.
type checkState struct {
	Found   bool `json:"found"`
	Checked bool `json:"checked"`
}

func (c *chrome) checkAt(xpath string) checkState {
	c.t.Helper()
	return eval[checkState](c, `((x) => {
		const e = document.evaluate(x, document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue;
		return e ? {found: true, checked: e.checked} : {found: false};
	})(`+js(xpath)+`)`)
}

// labelledChoice is an XPath for the radio button or check box inside the
// label with exactly this text, under scope (an XPath, or "").
func labelledChoice(scope, kind, label string) string {
	return scope + `//label[normalize-space()=` + xpathLiteral(label) + `]/input[@type="` + kind + `"]`
}

// pickRadio clicks the radio button labelled label, as a person clicks
// its text.
func (c *chrome) pickRadio(label string) {
	c.t.Helper()
	sel := labelledChoice("", "radio", label)
	c.do(fmt.Sprintf("choosing %q", label), chromedp.Click(`//label[normalize-space()=`+xpathLiteral(label)+`][input[@type="radio"]]`, chromedp.NodeVisible))
	s := c.checkAt(sel)
	c.expect("choosing "+label, s.Found && s.Checked, "the radio button %q is not chosen: %+v", label, s)
}

// setCheck ticks or clears the check box labelled label under scope.
func (c *chrome) setCheck(scope, label string, on bool) {
	c.t.Helper()
	sel := labelledChoice(scope, "checkbox", label)
	s := c.checkAt(sel)
	c.expect("check box "+label, s.Found, "no check box %q under %s", label, scope)
	if s.Checked != on {
		c.do(fmt.Sprintf("clicking the check box %q", label), chromedp.Click(sel, chromedp.NodeVisible))
	}
	s = c.checkAt(sel)
	c.expect("check box "+label, s.Checked == on, "the check box %q is %v, want %v", label, s.Checked, on)
}

// clickWithin clicks the link or button with this text under scope (an
// XPath) and waits for the page it leads to.
func (c *chrome) clickWithin(scope, text string) {
	c.t.Helper()
	c.clickAndLoad(fmt.Sprintf("clicking %q in %s", text, scope),
		scope+`//*[self::a or self::button][normalize-space()=`+xpathLiteral(text)+`]`)
}

// pageLink is a link as the page shows it.
type pageLink struct {
	Text string `json:"text"`
	Href string `json:"href"`
}

// appLinks are the app links on the dashboard.
func (c *chrome) appLinks() []pageLink {
	c.t.Helper()
	return eval[[]pageLink](c, `[...document.querySelectorAll("main ul.apps a")].map(a => ({text: a.innerText.trim(), href: a.getAttribute("href")}))`)
}

// tableRows are the cells' texts of the rows of the first table in main.
func (c *chrome) tableRows() [][]string {
	c.t.Helper()
	return eval[[][]string](c, `(() => { const t = document.querySelector("main table"); return t ?
		[...t.querySelectorAll("tbody tr")].map(tr => [...tr.cells].map(td => td.innerText.trim().replace(/\s+/g, " "))) : []; })()`)
}

// rowOf is the table row that mentions text (a KvK number, an address).
func rowOf(rows [][]string, text string) []string {
	for _, r := range rows {
		if slices.ContainsFunc(r, func(cell string) bool { return strings.Contains(cell, text) }) {
			return r
		}
	}
	return nil
}

// buttonLook is how the page shows a link or button.
type buttonLook struct {
	Found      bool   `json:"found"`
	Href       string `json:"href"`
	Background string `json:"background"`
	Color      string `json:"color"`
}

func (c *chrome) button(text string) buttonLook {
	c.t.Helper()
	return eval[buttonLook](c, `((text) => {
		const e = [...document.querySelectorAll("main a, main button")].find(e => e.innerText.trim() === text);
		if (!e) return {found: false};
		const s = getComputedStyle(e);
		return {found: true, href: e.getAttribute("href") || "", background: s.backgroundColor, color: s.color};
	})(`+js(text)+`)`)
}

var rgb = regexp.MustCompile(`^rgba?\((\d+), (\d+), (\d+)`)

// orange reports whether a CSS colour is an orange (the house style's
// --orange to --orange-darker: a strong red, half as much green, no blue).
func orange(color string) bool {
	m := rgb.FindStringSubmatch(color)
	if m == nil {
		return false
	}
	r, _ := strconv.Atoi(m[1])
	g, _ := strconv.Atoi(m[2])
	b, _ := strconv.Atoi(m[3])
	return r >= 130 && g >= r/4 && g <= r*3/4 && b <= 60
}

// registerHere walks the registration form from its first step to Maken,
// reading the code from the mail; the caller checks where Maken leads.
func registerHere(a *album, c *chrome, who, email, name, password string) {
	c.t.Helper()
	v := a.see(c, who+"register-email")
	c.expectPage("register", v, "/register", "Account aanmaken")
	c.fill("E-mailadres", email)
	c.click("Verificatiecode verzenden")
	v = a.see(c, who+"register-code")
	c.expect("code", v.Notice == "We hebben een verificatiecode gestuurd naar "+email+".", "notice %q", v.Notice)
	c.fill("Verificatiecode", c.code(email))
	c.click("Code verifiëren")
	v = a.see(c, who+"register-details")
	c.expect("details", v.Notice == "Je e-mailadres is geverifieerd. Kies nu een wachtwoord.", "notice %q", v.Notice)
	c.expectButtons("details", "Maken", "Annuleren")
	c.fill("Nieuw wachtwoord", password)
	c.fill("Nieuw wachtwoord bevestigen", password)
	c.fill("Voornaam en achternaam", name)
	c.click("Maken")
}

// simChoose checks the simulator's "Kies hoe u wilt inloggen" and picks
// a provider.
func simChoose(a *album, c *chrome, shot, provider string) {
	c.t.Helper()
	c.settleOn("/ehsim/kies")
	v := a.see(c, shot)
	c.expectPage("simulator", v, "/ehsim/kies", "Kies hoe u wilt inloggen")
	c.expect("simulator", strings.Contains(v.Text, "SIMULATOR — geen echte eHerkenning"), "the simulator is not labelled as one:\n%s", v.Text)
	c.expect("simulator", strings.Contains(v.Text, "minimaal betrouwbaarheidsniveau"), "no level in the introduction:\n%s", v.Text)
	c.expectButtons("simulator", "Verder", "Annuleren")
	c.selectOption("Kies uw leverancier", provider)
	c.click("Verder")
}

// simLogin checks the simulator's test login and answers with company
// and scenario (their labels).
func simLogin(a *album, c *chrome, shot, provider, company, scenario string) {
	c.t.Helper()
	c.settleOn("/ehsim/login")
	v := a.see(c, shot)
	c.expectPage("test login", v, "/ehsim/login", "Testinlog")
	c.expect("test login", strings.Contains(squash(v.Text), "Inloggen via "+provider), "the provider is not named:\n%s", v.Text)
	c.expect("test login", strings.Contains(v.Text, "SIMULATOR"), "the test login is not labelled as the simulator")
	c.pickRadio(company)
	c.pickRadio(scenario)
	c.click("Inloggen")
}

// expectSuccess checks the page the manual shows after eHerkenning.
func expectSuccess(c *chrome, v view, company string) {
	c.t.Helper()
	c.expectPage("success", v, "/eherkenning/complete", "Gelukt!")
	c.expect("success", strings.Contains(squash(v.Text), "Jouw account is nu Admin account voor "+company+"."), "no success message for %s:\n%s", company, v.Text)
	b := c.button("Naar je persoonlijke dashboard")
	c.expect("success", b.Found && b.Href == "/dashboard", "no button to the dashboard: %+v", b)
	c.expect("success", orange(b.Background), "the dashboard button is %s, not orange", b.Background)
}

// expectUpstream checks that the app was reached by one more request and
// got these headers.
func expectUpstream(t *testing.T, g *gateway, before int, want map[string]string) http.Header {
	t.Helper()
	if n := g.Upstream.count(); n != before+1 {
		t.Fatalf("the app received %d requests, want %d", n, before+1)
	}
	h := g.Upstream.last(t)
	for name, value := range want {
		if got := h.Values(name); len(got) != 1 || got[0] != value {
			t.Errorf("the app got %s = %q, want %q", name, got, value)
		}
	}
	return h
}

// TestBrowserEHerkenning follows the manual in Chromium from "Start hier"
// through registration and the broker simulator to "Jouw account is nu
// Admin", opens an app for the company, links a second company, switches
// between them, and meets two refusals in plain language.
func TestBrowserEHerkenning(t *testing.T) {
	exe := chromiumPath(t)
	start := time.Now()
	g := startGateway(t, flowsCaddyfile, gatewayParams{})
	c := newChrome(t, g, exe)
	defer c.finish()
	a := &album{next: 50}

	const (
		email    = "petra@de-vonk.nl"
		name     = "Petra de Vries"
		password = "groene tulpen langs het kanaal"
		demo     = "Wij Techniek Demo B.V."
		vonk     = "Installatiebedrijf De Vonk B.V."
	)

	// The manual: /account → Start hier → Login eHerkenning.
	c.open("/account")
	v := a.see(c, "eh-account")
	c.expectPage("account", v, "/account", "Met één account toegang tot al onze diensten")
	c.click("Start hier")
	v = a.see(c, "eh-eherkenning")
	c.expectPage("eherkenning", v, "/eherkenning", "Verifieer je bedrijf met eHerkenning")
	c.expectButtons("eherkenning", "Login eHerkenning")
	c.click("Login eHerkenning")
	v = a.see(c, "eh-login")
	c.expectPage("login", v, "/login", "Aanmelden met uw bestaande account")
	c.expect("login", strings.HasSuffix(v.query("return"), "/eherkenning/start"), "return address %q", v.query("return"))
	c.click("Nu registreren")

	// Registration; Maken goes straight on to the broker.
	registerHere(a, c, "eh-", email, name, password)
	if got := accountEmails(t, g); !slices.Equal(got, []string{email}) {
		t.Fatalf("accounts after Maken: %v", got)
	}
	simChoose(a, c, "eh-sim-choose", "Testleverancier Noord")
	simLogin(a, c, "eh-sim-login", "Testleverancier Noord", demo+" (KvK 12345678)", "Gelukt op EH3")

	// Back at wijgate: the success page and the orange button.
	c.settleOn("/eherkenning/complete")
	v = a.see(c, "eh-success")
	expectSuccess(c, v, demo)
	c.click("Naar je persoonlijke dashboard")

	v = a.see(c, "eh-dashboard")
	c.expectPage("dashboard", v, "/dashboard", "Mijn dashboard")
	c.expect("dashboard", strings.Contains(squash(v.Text), "Welkom, "+name+" ("+email+")"), "no welcome:\n%s", v.Text)
	c.expect("dashboard", strings.Contains(squash(v.Text), demo+" Admin"), "the active company and role are not shown:\n%s", v.Text)
	rows := c.tableRows()
	row := rowOf(rows, "12345678")
	c.expect("dashboard", len(rows) == 1 && len(row) >= 4 && row[0] == demo && row[2] == "Admin" && row[3] == "geverifieerd met eHerkenning",
		"organisations %q", rows)
	apps := c.appLinks()
	c.expect("dashboard", slices.Equal(apps, []pageLink{{"Declaratie Systeem", "/declaratie/"}, {"Website", "/website/"}}), "app links %+v", apps)
	c.expectButtons("dashboard", "Medewerkers en rechten beheren", "Nog een bedrijf koppelen", "Afmelden")

	// The app learns who acts for which company.
	before := g.Upstream.count()
	c.click("Declaratie Systeem")
	v = a.see(c, "eh-app-declaratie")
	c.expect("app", v.path() == "/declaratie/" && strings.Contains(v.Text, "upstream reached"), "the app was not reached: %s\n%s", v.URL, v.Text)
	h := expectUpstream(t, g, before, map[string]string{
		"X-Wij-User-Email": email,
		"X-Wij-User-Name":  "Petra de Vries",
		"X-Wij-Org-Kvk":    "12345678",
		"X-Wij-Org-Name":   demo,
		"X-Wij-Org-Role":   "admin",
		"X-Wij-Assurance":  "eh3",
	})
	if apps := strings.Split(h.Get("X-Wij-Apps"), ","); !slices.Contains(apps, "declaratie") || !slices.Contains(apps, "website") {
		t.Errorf("an admin's X-Wij-Apps = %q, want every app", h.Get("X-Wij-Apps"))
	}

	// A second company: Nog een bedrijf koppelen, another provider, EH4.
	c.open("/dashboard")
	c.click("Nog een bedrijf koppelen")
	v = a.see(c, "eh-eherkenning-again")
	c.expectPage("eherkenning again", v, "/eherkenning", "Verifieer je bedrijf met eHerkenning")
	c.click("Login eHerkenning")
	simChoose(a, c, "eh-sim-choose-again", "Testleverancier Zuid")
	simLogin(a, c, "eh-sim-login-again", "Testleverancier Zuid", vonk+" (KvK 87654321)", "Gelukt op EH4")
	c.settleOn("/eherkenning/complete")
	v = a.see(c, "eh-success-again")
	expectSuccess(c, v, vonk)
	c.click("Naar je persoonlijke dashboard")

	// Both companies; the new one is active, the other can be made so.
	v = a.see(c, "eh-dashboard-two")
	c.expectPage("two companies", v, "/dashboard", "Mijn dashboard")
	c.expect("two companies", strings.Contains(squash(v.Text), vonk+" Admin"), "the new company is not the active one:\n%s", v.Text)
	rows = c.tableRows()
	first, second := rowOf(rows, "12345678"), rowOf(rows, "87654321")
	c.expect("two companies", len(rows) == 2 && len(first) == 6 && len(second) == 6, "organisations %q", rows)
	c.expect("two companies", first[2] == "Admin" && second[2] == "Admin", "roles %q", rows)
	c.expect("two companies", first[5] == "Maak actief" && second[5] == "actief", "active marks %q", rows)
	for _, r := range rows {
		c.expect("two companies", !strings.HasPrefix(r[3], "anchor."), "an untranslated text on the dashboard: %q", r[3])
	}
	before = g.Upstream.count()
	c.click("Website")
	a.see(c, "eh-app-website-vonk")
	expectUpstream(t, g, before, map[string]string{"X-Wij-Org-Kvk": "87654321", "X-Wij-Org-Name": vonk, "X-Wij-Org-Role": "admin", "X-Wij-Assurance": "eh4"})

	c.open("/dashboard")
	c.clickWithin(`//main//tr[td[normalize-space()="12345678"]]`, "Maak actief")
	v = a.see(c, "eh-dashboard-switched")
	c.expectPage("switched", v, "/dashboard", "Mijn dashboard")
	c.expect("switched", strings.Contains(squash(v.Text), demo+" Admin"), "the switch did not take:\n%s", v.Text)
	rows = c.tableRows()
	first, second = rowOf(rows, "12345678"), rowOf(rows, "87654321")
	c.expect("switched", len(first) == 6 && len(second) == 6 && first[5] == "actief" && second[5] == "Maak actief", "active marks %q", rows)
	before = g.Upstream.count()
	c.click("Website")
	a.see(c, "eh-app-website-demo")
	expectUpstream(t, g, before, map[string]string{"X-Wij-Org-Kvk": "12345678", "X-Wij-Org-Name": demo, "X-Wij-Assurance": "eh3"})

	// Refusals, in plain language: cancelling at the broker, and a login
	// means below EH3.
	c.open("/dashboard")
	c.click("Nog een bedrijf koppelen")
	c.click("Login eHerkenning")
	c.settleOn("/ehsim/kies")
	c.click("Annuleren")
	c.settleOn("/eherkenning/acs")
	v = a.see(c, "eh-cancelled")
	c.expectPage("cancelled", v, "/eherkenning/acs", "Verifieer je bedrijf met eHerkenning")
	c.expect("cancelled", strings.Contains(v.Text, "Je hebt het inloggen met eHerkenning afgebroken. Er is niets gekoppeld."), "no plain message:\n%s", v.Text)
	c.expectButtons("cancelled", "Opnieuw proberen", "Mijn dashboard")
	c.click("Opnieuw proberen")
	c.settleOn("/eherkenning")
	c.click("Login eHerkenning")
	c.settleOn("/ehsim/kies")
	c.selectOption("Kies uw leverancier", "Testleverancier eIDAS")
	c.click("Verder")
	simLogin(a, c, "eh-sim-login-eh2plus", "Testleverancier eIDAS", "Bouw & Techniek Test V.O.F. (KvK 11223344)", "Niveau te laag (EH2+)")
	c.settleOn("/eherkenning/acs")
	v = a.see(c, "eh-level-too-low")
	c.expectPage("level too low", v, "/eherkenning/acs", "Verifieer je bedrijf met eHerkenning")
	c.expect("level too low", strings.Contains(v.Text, "Je inlogmiddel heeft een te laag betrouwbaarheidsniveau. Voor Wij Techniek is minimaal eHerkenning niveau 3 (EH3) nodig."),
		"no plain message:\n%s", v.Text)
	c.expectButtons("level too low", "Opnieuw proberen", "Mijn dashboard")
	c.click("Mijn dashboard")
	v = a.see(c, "eh-dashboard-after-refusals")
	c.expectPage("after refusals", v, "/dashboard", "Mijn dashboard")
	rows = c.tableRows()
	c.expect("after refusals", len(rows) == 2 && rowOf(rows, "11223344") == nil, "a refused company was linked: %q", rows)

	t.Logf("the eHerkenning path took %s in Chromium", time.Since(start).Round(time.Millisecond))
}

var inviteURL = regexp.MustCompile(`https?://[^\s<>"]+/invite/[A-Za-z0-9]+`)

// TestBrowserInvitation: an admin (verified through the simulator over
// HTTP) invites a colleague in Chromium with the Declaratie app; the
// colleague, in a browser of their own, registers through the invitation
// link from the mail, accepts and opens the app; the admin takes the
// right back and the colleague's next request is refused.
func TestBrowserInvitation(t *testing.T) {
	exe := chromiumPath(t)
	start := time.Now()
	g := startGateway(t, flowsCaddyfile, gatewayParams{})
	const (
		adminEmail = "anna@wij-demo.nl"
		adminName  = "Anna de Boer"
		colEmail   = "kees@wij-demo.nl"
		colName    = "Kees Bakker"
		colPass    = "de schuur staat vol met fietsen"
		demo       = "Wij Techniek Demo B.V."
	)
	g.addAccount(adminEmail, adminName, testPassword)
	hb := g.newBrowser()
	hb.login(adminEmail, testPassword)
	if resp, body := hb.verifyAt("12345678", "eh3"); !strings.Contains(body, "Jouw account is nu Admin account voor") {
		t.Fatalf("the admin's verification failed: %d\n%s", resp.StatusCode, body)
	}

	a := &album{next: 73}
	ac := newChrome(t, g, exe)
	defer ac.finish()

	// The admin logs in and opens the admin page from the dashboard.
	ac.open("/login")
	v := a.see(ac, "inv-admin-login")
	ac.expectPage("admin login", v, "/login", "Aanmelden met uw bestaande account")
	ac.fill("E-mailadres", adminEmail)
	ac.fill("Wachtwoord", testPassword)
	ac.click("Aanmelden")
	v = a.see(ac, "inv-admin-dashboard")
	ac.expectPage("admin dashboard", v, "/dashboard", "Mijn dashboard")
	ac.expect("admin dashboard", strings.Contains(squash(v.Text), demo+" Admin"), "the company is not active:\n%s", v.Text)
	ac.click("Medewerkers en rechten beheren")
	v = a.see(ac, "inv-admin-org")
	ac.expectPage("admin page", v, "/org/12345678", "Beheer: "+demo)
	ac.expect("admin page", strings.Contains(v.Text, "Er staan geen uitnodigingen open."), "pending invitations before inviting:\n%s", v.Text)
	me := rowOf(ac.tableRows(), adminEmail)
	ac.expect("admin page", len(me) == 5 && me[1] == "Admin" && me[2] == "Alle apps (Admin)" && me[4] == "Dit ben jij", "the admin's own row: %q", me)

	// The invitation, with the Declaratie app.
	invite := `//form[contains(@action, "/invite")]`
	ac.fill("E-mailadres van je collega", colEmail)
	ac.setCheck(invite, "Declaratie Systeem", true)
	ac.setCheck(invite, "Website", false)
	ac.click("Uitnodiging versturen")
	v = a.see(ac, "inv-admin-invited")
	ac.expectPage("invited", v, "/org/12345678", "Beheer: "+demo)
	ac.expect("invited", v.Notice == "De uitnodiging is verstuurd.", "notice %q", v.Notice)
	ac.expect("invited", strings.Contains(v.Text, colEmail), "the pending invitation is not listed:\n%s", v.Text)
	ac.expectButtons("invited", "Intrekken")

	m := g.SMTP.WaitFor(t, colEmail, 10*time.Second)
	if m.Subject != "Uitnodiging voor "+demo || !strings.Contains(m.Text, adminName+" nodigt je uit voor "+demo) || !strings.Contains(m.Text, "Declaratie Systeem") {
		t.Fatalf("invitation mail %q:\n%s", m.Subject, m.Text)
	}
	link := inviteURL.FindString(m.Text)
	if !strings.HasPrefix(link, g.URL+"/invite/") {
		t.Fatalf("no invitation link to %s in:\n%s", g.URL, m.Text)
	}

	// The colleague, in a browser of their own, opens the link, registers
	// and comes back to the invitation.
	cc := newChrome(t, g, exe)
	defer cc.finish()
	cc.do("opening the invitation link", chromedp.Navigate(link))
	v = a.see(cc, "inv-colleague-login")
	cc.expectPage("colleague login", v, "/login", "Aanmelden met uw bestaande account")
	cc.expect("colleague login", strings.HasPrefix(v.query("return"), "/invite/"), "return address %q", v.query("return"))
	cc.click("Nu registreren")
	registerHere(a, cc, "inv-colleague-", colEmail, colName, colPass)
	v = a.see(cc, "inv-colleague-invitation")
	cc.expectPage("invitation", v, strings.TrimPrefix(link, g.URL), "Uitnodiging")
	cc.expect("invitation", strings.Contains(squash(v.Text), "Je bent uitgenodigd om de diensten van Wij Techniek te gebruiken namens "+demo+"."),
		"no invitation text:\n%s", v.Text)
	cc.expect("invitation", strings.Contains(v.Text, "Declaratie Systeem") && !strings.Contains(v.Text, "Website"), "the apps are not shown:\n%s", v.Text)
	cc.expectButtons("invitation", "Uitnodiging accepteren")
	cc.click("Uitnodiging accepteren")

	v = a.see(cc, "inv-colleague-dashboard")
	cc.expectPage("colleague dashboard", v, "/dashboard", "Mijn dashboard")
	cc.expect("colleague dashboard", strings.Contains(squash(v.Text), "Welkom, "+colName+" ("+colEmail+")"), "no welcome:\n%s", v.Text)
	row := rowOf(cc.tableRows(), "12345678")
	cc.expect("colleague dashboard", len(row) >= 4 && row[0] == demo && row[2] == "Medewerker" && row[3] == "uitgenodigd door een beheerder", "organisation %q", row)
	apps := cc.appLinks()
	cc.expect("colleague dashboard", slices.Equal(apps, []pageLink{{"Declaratie Systeem", "/declaratie/"}}), "app links %+v", apps)
	cc.expect("colleague dashboard", !slices.Contains(cc.buttons(), "Medewerkers en rechten beheren"), "a member is offered the admin page")

	before := g.Upstream.count()
	cc.click("Declaratie Systeem")
	v = a.see(cc, "inv-colleague-app")
	cc.expect("colleague app", strings.Contains(v.Text, "upstream reached"), "the app was not reached: %s\n%s", v.URL, v.Text)
	expectUpstream(t, g, before, map[string]string{
		"X-Wij-User-Email": colEmail,
		"X-Wij-Org-Kvk":    "12345678",
		"X-Wij-Org-Role":   "member",
		"X-Wij-Apps":       "declaratie",
		"X-Wij-Assurance":  "invited",
	})

	// The admin sees the new member and takes the Declaratie right back.
	ac.open("/org/12345678")
	v = a.see(ac, "inv-admin-member")
	member := `//main//tr[td[contains(normalize-space(), ` + xpathLiteral(colEmail) + `)]]`
	row = rowOf(ac.tableRows(), colEmail)
	ac.expect("member", len(row) == 5 && strings.Contains(row[0], colName) && strings.Contains(row[0], "uitgenodigd door "+adminName) && row[1] == "Medewerker",
		"the member's row: %q", row)
	ac.expect("member", strings.Contains(v.Text, "Er staan geen uitnodigingen open."), "the accepted invitation is still pending:\n%s", v.Text)
	if s := ac.checkAt(labelledChoice(member, "checkbox", "Declaratie Systeem")); !s.Found || !s.Checked {
		t.Fatalf("the member's Declaratie right is not shown as granted: %+v", s)
	}
	ac.setCheck(member, "Declaratie Systeem", false)
	ac.clickWithin(member, "Apps opslaan")
	v = a.see(ac, "inv-admin-saved")
	ac.expectPage("saved", v, "/org/12345678", "Beheer: "+demo)
	ac.expect("saved", v.Notice == "De wijziging is opgeslagen. Ze geldt meteen.", "notice %q", v.Notice)
	if s := ac.checkAt(labelledChoice(member, "checkbox", "Declaratie Systeem")); !s.Found || s.Checked {
		t.Fatalf("after saving, the member's Declaratie right: %+v", s)
	}
	ac.expect("saved", strings.Contains(v.Text, "de apps: geen apps"), "the audit log does not show the change:\n%s", v.Text)

	// The colleague's very next request is refused, naming the admin.
	before = g.Upstream.count()
	cc.open("/declaratie/")
	v = a.see(cc, "inv-colleague-no-access")
	cc.expectPage("no access", v, "/declaratie/", "Geen toegang")
	cc.expect("no access", strings.Contains(v.Text, "Je hebt (nog) geen toegang tot deze app namens je organisatie."), "no explanation:\n%s", v.Text)
	cc.expect("no access", strings.Contains(squash(v.Text), "App: Declaratie Systeem"), "the app is not named:\n%s", v.Text)
	cc.expect("no access", strings.Contains(squash(v.Text), "Organisatie: "+demo+" (KvK 12345678)"), "the organisation is not named:\n%s", v.Text)
	cc.expect("no access", strings.Contains(v.Text, "Beheerders van je organisatie") && strings.Contains(v.Text, adminName) && strings.Contains(v.Text, adminEmail),
		"the admin is not named:\n%s", v.Text)
	cc.expectButtons("no access", "Naar mijn dashboard")
	if n := g.Upstream.count(); n != before {
		t.Fatalf("the refused request reached the app")
	}
	cc.click("Naar mijn dashboard")
	v = a.see(cc, "inv-colleague-dashboard-no-apps")
	cc.expectPage("no apps", v, "/dashboard", "Mijn dashboard")
	cc.expect("no apps", len(cc.appLinks()) == 0 && strings.Contains(v.Text, "Je hebt voor deze organisatie nog geen apps."), "apps after the withdrawal:\n%s", v.Text)

	t.Logf("the invitation path took %s in Chromium", time.Since(start).Round(time.Millisecond))
}
