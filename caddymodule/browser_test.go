package caddymodule

// Browser end-to-end tests: Debian's Chromium, driven by chromedp, walks
// the manual's path the way a company admin does — clicking the buttons
// by their visible text, typing into the fields found by their labels,
// reading the verification codes from the test's SMTP server — and every
// step checks what the person sees. Each page is saved as a full-page
// PNG under testoutput/screenshots (or $WIJGATE_TEST_OUTPUT) to be looked
// at.
//
// Chromium treats http://127.0.0.1 as a secure context: it stores and
// sends the Secure, __Host- prefixed session cookie there, so the tests
// use the shared gateway.caddyfile as it is (TestBrowserManualPath
// checks the cookie the browser holds).

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

const (
	browserTimeout = 90 * time.Second // the whole test
	stepTimeout    = 15 * time.Second // one action or check
)

// chromiumPath finds Debian's Chromium. Without it the browser tests skip
// on a workstation, but fail in CI, where .ci/run installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium is not installed (apt-get install chromium); in CI the browser tests must run")
	}
	t.Skip("Chromium is not installed (apt-get install chromium); skipping the browser tests")
	return ""
}

// screenshotDir is $WIJGATE_TEST_OUTPUT, or testoutput/screenshots in the
// repository (git-ignored).
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("WIJGATE_TEST_OUTPUT")
	if dir == "" {
		root, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(root)
			if parent == root {
				t.Fatal("no go.mod above the test's directory")
			}
			root = parent
		}
		dir = filepath.Join(root, "testoutput", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// chrome is one headless Chromium with one tab, looking at one gateway.
type chrome struct {
	t     *testing.T
	g     *gateway
	ctx   context.Context
	dir   string
	next  int // number of the next screenshot
	shots []string

	mu      sync.Mutex
	broken  []string // page exceptions and CSP refusals
	console []string // other console errors, such as a missing favicon
}

// newChrome starts Chromium with a fresh profile. The test's whole run is
// bounded by browserTimeout: when it passes, the browser is stopped.
func newChrome(t *testing.T, g *gateway, exe string) *chrome {
	t.Helper()
	c := &chrome{t: t, g: g, dir: screenshotDir(t), next: 1}
	profile := t.TempDir()

	tctx, tcancel := context.WithTimeout(context.Background(), browserTimeout)
	actx, acancel := chromedp.NewExecAllocator(tctx,
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		chromedp.Flag("lang", "nl-NL"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(actx)
	// Cleanups run last-in first-out: the browser is gone before its
	// profile directory and the gateway are removed.
	t.Cleanup(func() {
		_ = chromedp.Cancel(ctx)
		cancel()
		acancel()
		tcancel()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	c.ctx = ctx

	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if !m.IsException() && m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleWarning {
				continue
			}
			line := fmt.Sprintf("%s (%s)", m, m.URL)
			c.mu.Lock()
			// A page script that throws, or anything the Content
			// Security Policy refused, is a broken page. An error
			// status of a page itself (a refused login) is not.
			if m.IsException() || strings.Contains(line, "Content Security Policy") || strings.Contains(line, "Refused to") {
				c.broken = append(c.broken, line)
			} else if !slices.Contains(c.console, line) {
				c.console = append(c.console, line)
			}
			c.mu.Unlock()
		}
	}()
	return c
}

// do runs actions within stepTimeout and fails the test, naming the
// page it was on, if one fails.
func (c *chrome) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		c.t.Fatalf("%s (on %s): %v", what, c.location(), err)
	}
}

func (c *chrome) location() string {
	ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "?"
	}
	return loc
}

// eval evaluates a JavaScript expression and decodes its value into T.
func eval[T any](c *chrome, expr string) T {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		c.t.Fatalf("evaluating %s (on %s): %v", expr, c.location(), err)
	}
	return v
}

// js quotes a Go string as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// xpathLiteral quotes s for an XPath expression.
func xpathLiteral(s string) string {
	if !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	return "'" + s + "'"
}

// open navigates to a path on the gateway, as typing the address does.
func (c *chrome) open(path string) {
	c.t.Helper()
	c.do("opening "+path, chromedp.Navigate(c.g.URL+path))
}

// click clicks the link or button with exactly this visible text and
// waits for the page it leads to.
func (c *chrome) click(text string) {
	c.t.Helper()
	sel := `//*[self::a or self::button][normalize-space()=` + xpathLiteral(text) + `]`
	c.clickAndLoad(fmt.Sprintf("clicking %q", text), sel)
}

// switchLanguage clicks the language link in the page header.
func (c *chrome) switchLanguage(text string) {
	c.t.Helper()
	c.clickAndLoad(fmt.Sprintf("clicking the language link %q", text), `//header//a[normalize-space()=`+xpathLiteral(text)+`]`)
}

func (c *chrome) clickAndLoad(what, sel string) {
	c.t.Helper()
	c.do(what, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(sel, chromedp.NodeVisible))(ctx, t)
		return err
	}))
}

// inputFor is an XPath for the input that the label with this text is for.
func inputFor(label string) string {
	return `//input[@id=//label[normalize-space()=` + xpathLiteral(label) + `]/@for]`
}

// fill types into the field with this label, replacing what it held.
func (c *chrome) fill(label, text string) {
	c.t.Helper()
	sel := inputFor(label)
	c.do(fmt.Sprintf("typing into %q", label), chromedp.Clear(sel, chromedp.NodeVisible), chromedp.SendKeys(sel, text, chromedp.NodeVisible))
}

// view is what the person sees of a page.
type view struct {
	URL    string `json:"url"`
	Lang   string `json:"lang"`
	Title  string `json:"title"`
	H1     string `json:"h1"`
	Notice string `json:"notice"` // the green status message
	Alert  string `json:"alert"`  // the red message above the form
	Text   string `json:"text"`   // all visible text
}

func (v view) path() string {
	u, err := url.Parse(v.URL)
	if err != nil {
		return v.URL
	}
	return u.Path
}

func (v view) query(key string) string {
	u, err := url.Parse(v.URL)
	if err != nil {
		return ""
	}
	return u.Query().Get(key)
}

// see saves a full-page screenshot of the current page as NN-<name>.png,
// numbered in the order of the steps, and returns what the page shows.
func (c *chrome) see(name string) view {
	c.t.Helper()
	c.do("waiting for the page", chromedp.WaitReady("body", chromedp.NodeVisible))
	v := eval[view](c, `(() => {
		const text = s => { const e = document.querySelector(s); return e ? e.innerText.trim() : ""; };
		return {url: location.href, lang: document.documentElement.lang, title: document.title,
			h1: text("h1"), notice: text(".notice"), alert: text(".alert"), text: document.body.innerText};
	})()`)
	ctx, cancel := context.WithTimeout(c.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		c.t.Fatalf("screenshot %s: %v", name, err)
	}
	// A screenshot of an earlier run under this number goes first.
	old, _ := filepath.Glob(filepath.Join(c.dir, fmt.Sprintf("%02d-*.png", c.next)))
	for _, f := range old {
		_ = os.Remove(f)
	}
	file := fmt.Sprintf("%02d-%s.png", c.next, name)
	c.next++
	if err := os.WriteFile(filepath.Join(c.dir, file), png, 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.shots = append(c.shots, file)
	return v
}

// fieldState is a labelled input as the browser exposes it.
type fieldState struct {
	Found        bool   `json:"found"`
	Value        string `json:"value"`
	Type         string `json:"type"`
	Autocomplete string `json:"autocomplete"`
	Invalid      string `json:"invalid"`     // aria-invalid
	Description  string `json:"description"` // text of the aria-describedby elements
	Error        string `json:"error"`       // text of the field's own error message
	Visible      bool   `json:"visible"`
}

func (c *chrome) field(label string) fieldState {
	c.t.Helper()
	return eval[fieldState](c, `((label) => {
		const l = [...document.querySelectorAll("label")].find(l => l.innerText.trim() === label);
		const i = l && document.getElementById(l.htmlFor);
		if (!i) return {found: false};
		const desc = (i.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean)
			.map(id => { const e = document.getElementById(id); return e ? e.innerText.trim() : "#" + id + " missing"; });
		return {found: true, value: i.value, type: i.type, autocomplete: i.getAttribute("autocomplete") || "",
			invalid: i.getAttribute("aria-invalid") || "", description: desc.join(" "),
			error: ((e) => e ? e.innerText.trim() : "")(document.getElementById(i.id + "-error")),
			visible: i.offsetParent !== null};
	})(`+js(label)+`)`)
}

// buttons are the visible texts of the page's buttons and links in main.
func (c *chrome) buttons() []string {
	c.t.Helper()
	return eval[[]string](c, `[...document.querySelectorAll("main a, main button")]
		.filter(e => e.offsetParent !== null).map(e => e.innerText.trim())`)
}

// expect fails the test when cond is false, naming the step.
func (c *chrome) expect(step string, cond bool, format string, args ...any) {
	c.t.Helper()
	if !cond {
		c.t.Fatalf("%s: "+format, append([]any{step}, args...)...)
	}
}

func (c *chrome) expectPage(step string, v view, path, h1 string) {
	c.t.Helper()
	c.expect(step, v.path() == path, "at %s, want %s", v.URL, path)
	c.expect(step, v.H1 == h1, "heading %q, want %q", v.H1, h1)
}

func (c *chrome) expectButtons(step string, want ...string) {
	c.t.Helper()
	have := c.buttons()
	for _, w := range want {
		c.expect(step, slices.Contains(have, w), "no visible button or link %q among %q", w, have)
	}
}

// finish logs the screenshots and the console's errors, and fails on
// JavaScript exceptions and on anything the Content Security Policy
// refused.
func (c *chrome) finish() {
	c.t.Helper()
	c.t.Logf("screenshots in %s: %s", c.dir, strings.Join(c.shots, " "))
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.console {
		c.t.Logf("browser console: %s", m)
	}
	for _, m := range c.broken {
		c.t.Errorf("broken page, the browser console says: %s", m)
	}
}

// sessionCookie is the session cookie the browser holds for the gateway.
func (c *chrome) sessionCookie() *network.Cookie {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{c.g.URL + "/"}})
	if err != nil {
		c.t.Fatal(err)
	}
	for _, ck := range res.Cookies {
		if ck.Name == cookieName {
			return ck
		}
	}
	return nil
}

// code reads the next verification code mailed to addr.
func (c *chrome) code(addr string) string {
	c.t.Helper()
	m := c.g.SMTP.WaitFor(c.t, addr, 10*time.Second)
	code := sixDigits.FindStringSubmatch(m.Text)
	if code == nil {
		c.t.Fatalf("no code in the mail %q to %s:\n%s", m.Subject, addr, m.Text)
	}
	return code[1]
}

var spaces = regexp.MustCompile(`\s+`)

func squash(s string) string { return strings.TrimSpace(spaces.ReplaceAllString(s, " ")) }

// TestBrowserManualPath walks the manual in Chromium: from /account to a
// new account (reading the code from the mail), into a guarded app, out
// and in again, through a password reset, and into English.
func TestBrowserManualPath(t *testing.T) {
	exe := chromiumPath(t)
	start := time.Now()
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	c := newChrome(t, g, exe)
	defer c.finish()

	const (
		email       = "test@wij-techniek.nl"
		name        = "Jan Janssen"
		password    = "zeven blauwe fietsen op de dijk"
		newPassword = "de kraan in de keuken lekt weer"
	)

	// 1. The manual: "Op wij-techniek.nl/account klik je op de knop Start Hier."
	c.open("/account")
	v := c.see("account")
	c.expectPage("account", v, "/account", "Met één account toegang tot al onze diensten")
	c.expect("account", v.Lang == "nl", "page language %q, want nl", v.Lang)
	c.expect("account", strings.Contains(v.Title, "Wij Techniek"), "title %q", v.Title)
	c.expectButtons("account", "Start hier", "Ik heb al een account")
	c.click("Start hier")

	v = c.see("eherkenning")
	c.expectPage("eherkenning", v, "/eherkenning", "Verifieer je bedrijf met eHerkenning")
	c.expect("eherkenning", strings.Contains(v.Text, "eHerkenning niveau 3"), "the page does not mention EH3")
	c.expectButtons("eherkenning", "Login eHerkenning", "Klik hier voor meer informatie en aanvragen")
	c.click("Login eHerkenning")

	// Without an account the person meets the login page, which carries
	// the way back to eHerkenning.
	v = c.see("login")
	c.expectPage("login", v, "/login", "Aanmelden met uw bestaande account")
	c.expect("login", strings.HasSuffix(v.query("return"), "/eherkenning/start"), "return address %q", v.query("return"))
	for _, label := range []string{"E-mailadres", "Wachtwoord"} {
		f := c.field(label)
		c.expect("login", f.Found && f.Visible && f.Value == "", "field %q: %+v", label, f)
	}
	c.expectButtons("login", "Aanmelden", "Wachtwoord vergeten?", "Nu registreren")
	c.click("Nu registreren")

	// 2. Registration, numbered as in the manual.
	v = c.see("register-email")
	c.expectPage("register", v, "/register", "Account aanmaken")
	c.expect("register", strings.HasSuffix(v.query("return"), "/eherkenning/start"), "return address lost: %s", v.URL)
	c.expect("register", strings.Contains(v.Text, "Geef de volgende gegevens op."), "no intro")
	if f := c.field("E-mailadres"); f.Type != "email" || f.Autocomplete != "email" {
		t.Fatalf("email field: %+v", f)
	}
	c.fill("E-mailadres", email)         // 1.
	c.click("Verificatiecode verzenden") // 2.
	v = c.see("register-code")
	c.expectPage("code", v, "/register", "Account aanmaken")
	c.expect("code", v.Notice == "We hebben een verificatiecode gestuurd naar "+email+".", "notice %q", v.Notice)
	c.expect("code", strings.Contains(v.Text, email), "the address is not shown")
	if f := c.field("Verificatiecode"); !f.Found || f.Autocomplete != "one-time-code" || f.Value != "" {
		t.Fatalf("code field: %+v", f)
	}
	c.expectButtons("code", "Code verifiëren", "Nieuwe code verzenden", "E-mailadres wijzigen")
	c.fill("Verificatiecode", c.code(email)) // 3.
	c.click("Code verifiëren")               // 4.

	v = c.see("register-details")
	c.expect("details", v.Notice == "Je e-mailadres is geverifieerd. Kies nu een wachtwoord.", "notice %q", v.Notice)
	c.expect("details", strings.Contains(v.Text, email+" geverifieerd"), "the verified address is not shown")
	for _, label := range []string{"Nieuw wachtwoord", "Nieuw wachtwoord bevestigen"} {
		f := c.field(label)
		c.expect("details", f.Type == "password" && f.Autocomplete == "new-password", "field %q: %+v", label, f)
	}
	if f := c.field("Voornaam en achternaam"); !f.Found || f.Autocomplete != "name" {
		t.Fatalf("name field: %+v", f)
	}
	c.expectButtons("details", "Maken", "Annuleren")
	if got := accountEmails(t, g); len(got) != 0 {
		t.Fatalf("an account exists before Maken: %v", got)
	}
	c.fill("Nieuw wachtwoord", password)            // 5.
	c.fill("Nieuw wachtwoord bevestigen", password) // 5.
	c.fill("Voornaam en achternaam", name)          // 6.
	c.click("Maken")                                // 7.

	// Maken logs the person in and sends them on to where they were
	// going: /eherkenning/start, which this gateway has not configured.
	c.settleOn("/eherkenning/start")
	v = c.see("after-create")
	c.expect("after Maken", v.path() == "/eherkenning/start", "at %s, want the return address /eherkenning/start", v.URL)
	c.expect("after Maken", strings.Contains(v.Text, "eHerkenning is op deze server niet ingesteld"), "unexpected page:\n%s", v.Text)
	if got := accountEmails(t, g); !slices.Equal(got, []string{email}) {
		t.Fatalf("accounts after Maken: %v", got)
	}
	ck := c.sessionCookie()
	if ck == nil {
		t.Fatal("Chromium holds no session cookie after Maken: it refused the Secure __Host- cookie on http://127.0.0.1")
	}
	c.expect("cookie", ck.Secure && ck.HTTPOnly && ck.SameSite == network.CookieSameSiteLax && ck.Path == "/",
		"session cookie attributes: %+v", *ck)
	c.click("Terug naar de startpagina")
	v = c.see("account-logged-in")
	c.expectPage("account (logged in)", v, "/account", "Met één account toegang tot al onze diensten")
	c.expectButtons("account (logged in)", "Mijn dashboard")
	c.click("Mijn dashboard")
	v = c.see("dashboard")
	c.expectPage("dashboard", v, "/dashboard", "Mijn dashboard")
	c.expect("dashboard", strings.Contains(squash(v.Text), "Welkom, "+name+" ("+email+")"), "name not shown:\n%s", v.Text)
	c.expectButtons("dashboard", "Afmelden")

	// 3. The guarded app receives who this is.
	c.open("/declaratie/")
	v = c.see("app-declaratie")
	c.expect("app", strings.Contains(v.Text, "upstream reached"), "the app was not reached: %s\n%s", v.URL, v.Text)
	if got := g.Upstream.last(t).Get("X-Wij-User-Email"); got != email {
		t.Fatalf("the app got X-Wij-User-Email %q, want %q", got, email)
	}
	if got := g.Upstream.last(t).Get("X-Wij-User-Name"); got != name {
		t.Fatalf("the app got X-Wij-User-Name %q, want %q", got, name)
	}

	// 4. Log out, and in again.
	c.open("/dashboard")
	c.see("dashboard-before-logout")
	c.click("Afmelden")
	v = c.see("login-logged-out")
	c.expectPage("logged out", v, "/login", "Aanmelden met uw bestaande account")
	c.expect("logged out", v.Notice == "U bent afgemeld.", "notice %q", v.Notice)
	c.expect("logged out", c.sessionCookie() == nil, "the session cookie survived the logout")
	c.fill("E-mailadres", email)
	c.fill("Wachtwoord", password)
	c.click("Aanmelden")
	v = c.see("dashboard-after-login")
	c.expectPage("login", v, "/dashboard", "Mijn dashboard")
	c.expect("login", strings.Contains(squash(v.Text), "Welkom, "+name), "name not shown")

	// 5. A forgotten password.
	c.click("Afmelden")
	c.see("login-before-reset")
	c.click("Wachtwoord vergeten?")
	v = c.see("reset-email")
	c.expectPage("reset", v, "/password/forgot", "Wachtwoord vergeten")
	c.fill("E-mailadres", email)
	c.click("Verificatiecode verzenden")
	v = c.see("reset-code")
	c.expect("reset code", v.Notice == "We hebben een verificatiecode gestuurd naar "+email+".", "notice %q", v.Notice)
	c.fill("Verificatiecode", c.code(email))
	c.click("Code verifiëren")
	v = c.see("reset-password")
	c.expectPage("reset password", v, "/password/forgot", "Wachtwoord vergeten")
	c.expectButtons("reset password", "Wachtwoord opslaan", "Annuleren")
	c.fill("Nieuw wachtwoord", newPassword)
	c.fill("Nieuw wachtwoord bevestigen", newPassword)
	c.click("Wachtwoord opslaan")
	v = c.see("reset-done")
	c.expectPage("reset done", v, "/password/done", "Wachtwoord gewijzigd")
	c.expect("reset done", strings.Contains(v.Text, "Je wachtwoord is gewijzigd en je bent overal afgemeld. Meld je aan met je nieuwe wachtwoord."), "page %q", v.Text)
	if m := g.SMTP.WaitFor(t, email, 10*time.Second); !strings.Contains(m.Subject, "gewijzigd") {
		t.Fatalf("no password-changed mail, got %q", m.Subject)
	}
	c.click("Aanmelden")
	v = c.see("login-after-reset")
	c.expectPage("login after reset", v, "/login", "Aanmelden met uw bestaande account")
	c.fill("E-mailadres", email)
	c.fill("Wachtwoord", password)
	c.click("Aanmelden")
	v = c.see("login-old-password")
	c.expect("old password", v.H1 == "Aanmelden met uw bestaande account", "the old password was accepted: %s %q", v.URL, v.H1)
	c.expect("old password", v.Alert == "Het e-mailadres of wachtwoord is onjuist.", "error %q", v.Alert)
	c.expect("old password", c.field("E-mailadres").Value == email, "the typed address was not kept")
	c.expect("old password", c.field("Wachtwoord").Value == "", "the password was sent back into the page")
	c.fill("Wachtwoord", newPassword)
	c.click("Aanmelden")
	v = c.see("dashboard-new-password")
	c.expectPage("new password", v, "/dashboard", "Mijn dashboard")

	// 6. English, and it sticks: across pages and across a login.
	c.click("Afmelden")
	v = c.see("login-logged-out-again")
	c.expect("before English", v.Lang == "nl" && v.Notice == "U bent afgemeld.", "language %q, notice %q", v.Lang, v.Notice)
	c.switchLanguage("English")
	v = c.see("login-en")
	c.expect("English login", v.Lang == "en", "page language %q", v.Lang)
	c.expectPage("English login", v, "/login", "Sign in with your existing account")
	c.expect("English login", v.Notice == "You have been signed out.", "notice %q", v.Notice)
	c.expectButtons("English login", "Sign in", "Forgot your password?", "Register now")
	c.click("Register now")
	v = c.see("register-en")
	c.expect("English register", v.Lang == "en", "the language did not stick: %q", v.Lang)
	c.expectPage("English register", v, "/register", "Create an account")
	c.expectButtons("English register", "Send verification code")
	c.click("Sign in")
	v = c.see("login-en-again")
	c.expectPage("English login again", v, "/login", "Sign in with your existing account")
	c.fill("Email address", email)
	c.fill("Password", newPassword)
	c.click("Sign in")
	v = c.see("dashboard-en")
	c.expect("English dashboard", v.Lang == "en", "the language did not stick through the login: %q", v.Lang)
	c.expectPage("English dashboard", v, "/dashboard", "My dashboard")
	c.expect("English dashboard", strings.Contains(squash(v.Text), "Welcome, "+name+" ("+email+")"), "no English welcome:\n%s", v.Text)
	c.expectButtons("English dashboard", "Sign out")
	c.switchLanguage("Nederlands")
	v = c.see("dashboard-nl-again")
	c.expect("Dutch again", v.Lang == "nl", "page language %q", v.Lang)
	c.expectPage("Dutch again", v, "/dashboard", "Mijn dashboard")

	t.Logf("the manual's path took %s in Chromium", time.Since(start).Round(time.Millisecond))
}

// TestBrowserShowsErrorsAtTheField submits bad forms and checks the
// message is visible, at the field, and tied to it for screen readers.
func TestBrowserShowsErrorsAtTheField(t *testing.T) {
	exe := chromiumPath(t)
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	c := newChrome(t, g, exe)
	c.next = 40 // after TestBrowserManualPath's screenshots
	defer c.finish()

	c.open("/login")
	c.see("login")
	c.click("Aanmelden")
	v := c.see("login-empty")
	c.expectPage("empty login", v, "/login", "Aanmelden met uw bestaande account")
	c.expect("empty login", v.Alert != "", "no message above the form")
	for label, want := range map[string]string{
		"E-mailadres": "Vul een geldig e-mailadres in, zoals naam@bedrijf.nl.",
		"Wachtwoord":  "Vul uw wachtwoord in.",
	} {
		f := c.field(label)
		c.expect("empty login", f.Invalid == "true", "%q has aria-invalid %q", label, f.Invalid)
		c.expect("empty login", strings.Contains(f.Description, want), "%q is described by %q, want %q", label, f.Description, want)
		c.expect("empty login", strings.Contains(v.Text, want), "%q's error is not visible", label)
	}

	c.fill("E-mailadres", testEmail)
	c.fill("Wachtwoord", "not the right password at all")
	c.click("Aanmelden")
	v = c.see("login-wrong-password")
	c.expect("wrong password", v.Alert == "Het e-mailadres of wachtwoord is onjuist.", "error %q", v.Alert)
	c.expect("wrong password", c.field("E-mailadres").Value == testEmail, "the address was not kept")
	c.expect("wrong password", c.field("Wachtwoord").Value == "", "the password came back")
	c.expect("wrong password", eval[int](c, `document.querySelectorAll('[aria-invalid="true"]').length`) == 0,
		"a field is marked invalid although the message must not say which was wrong")

	c.open("/register")
	c.see("register")
	c.fill("E-mailadres", "jan@")
	c.click("Verificatiecode verzenden")
	v = c.see("register-invalid-email")
	f := c.field("E-mailadres")
	c.expect("invalid email", f.Invalid == "true" && f.Description != "", "email field: %+v", f)
	c.expect("invalid email", strings.Contains(v.Text, f.Description), "the field error %q is not visible", f.Description)
	c.expect("invalid email", f.Value == "jan@", "the typed address was not kept: %q", f.Value)

	c.fill("E-mailadres", "nieuw@example.nl")
	c.click("Verificatiecode verzenden")
	code := c.code("nieuw@example.nl")
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	c.fill("Verificatiecode", wrong)
	c.click("Code verifiëren")
	v = c.see("register-wrong-code")
	f = c.field("Verificatiecode")
	c.expect("wrong code", f.Invalid == "true", "code field: %+v", f)
	c.expect("wrong code", strings.Contains(f.Description, "Deze code klopt niet"), "code field described by %q", f.Description)
	c.expect("wrong code", strings.Contains(v.Text, "Deze code klopt niet"), "the error is not visible")

	c.fill("Verificatiecode", code)
	c.click("Code verifiëren")
	c.see("register-details")
	c.fill("Nieuw wachtwoord", "kort")
	c.fill("Nieuw wachtwoord bevestigen", "iets anders")
	c.fill("Voornaam en achternaam", "")
	c.click("Maken")
	v = c.see("register-bad-details")
	for _, label := range []string{"Nieuw wachtwoord", "Voornaam en achternaam"} {
		f := c.field(label)
		c.expect("bad details", f.Invalid == "true" && strings.Contains(f.Description, f.Error) && f.Error != "", "%q: %+v", label, f)
		c.expect("bad details", strings.Contains(v.Text, f.Error), "%q's error %q is not visible", label, f.Error)
		c.expect("bad details", f.Value == "" || label != "Nieuw wachtwoord", "the password came back")
	}
	if got := accountEmails(t, g); !slices.Equal(got, []string{testEmail}) {
		t.Fatalf("a bad form changed the accounts: %v", got)
	}
}
