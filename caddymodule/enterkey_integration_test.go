package caddymodule

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// pageForm is a form of a page as a browser sees it: the controls it owns
// in tree order, inside it or naming it with a form attribute.
type pageForm struct {
	action   string
	controls []*html.Node
}

func attr(n *html.Node, name string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val, true
		}
	}
	return "", false
}

func isSubmitButton(n *html.Node) bool {
	typ, _ := attr(n, "type")
	switch n.Data {
	case "button":
		return typ == "" || typ == "submit"
	case "input":
		return typ == "submit" || typ == "image"
	}
	return false
}

// takesTyping reports whether n is a field in which Enter submits its
// form (HTML's implicit submission).
func takesTyping(n *html.Node) bool {
	if n.Data != "input" {
		return false
	}
	typ, _ := attr(n, "type")
	switch typ {
	case "", "text", "email", "password", "search", "tel", "url", "number", "date", "time":
		return true
	}
	return false
}

// formsOf parses a page and gives its forms; a form attribute that names
// no form of the page fails the test.
func formsOf(t *testing.T, page, body string) []*pageForm {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", page, err)
	}
	var forms []*pageForm
	byNode := map[*html.Node]*pageForm{}
	byID := map[string]*pageForm{}
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.Data == "form" {
			f := &pageForm{}
			f.action, _ = attr(n, "action")
			forms = append(forms, f)
			byNode[n] = f
			if id, ok := attr(n, "id"); ok {
				byID[id] = f
			}
		}
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || (n.Data != "input" && n.Data != "button") {
			continue
		}
		var owner *pageForm
		if id, ok := attr(n, "form"); ok {
			if owner = byID[id]; owner == nil {
				t.Errorf("%s: a control names the form %q, which the page does not have", page, id)
				continue
			}
		} else {
			for a := n.Parent; a != nil && owner == nil; a = a.Parent {
				owner = byNode[a]
			}
		}
		if owner != nil {
			owner.controls = append(owner.controls, n)
		}
	}
	return forms
}

// checkEnterKey fails the test unless, in every form of the page with a
// field to type in, the form's default button (the first submit button it
// owns, which Enter presses) is its primary one, and every form that
// posts carries the anti-forgery token.
func checkEnterKey(t *testing.T, page, body string) {
	t.Helper()
	forms := formsOf(t, page, body)
	if len(forms) == 0 {
		t.Errorf("%s: no form on the page", page)
	}
	for _, f := range forms {
		var typing, submits []*html.Node
		hasToken := false
		for _, c := range f.controls {
			if takesTyping(c) {
				typing = append(typing, c)
			}
			if isSubmitButton(c) {
				submits = append(submits, c)
			}
			if name, _ := attr(c, "name"); name == "csrf" {
				hasToken = true
			}
		}
		if !hasToken {
			t.Errorf("%s: the form to %s carries no anti-forgery token", page, f.action)
		}
		if len(submits) == 0 {
			t.Errorf("%s: the form to %s has no submit button", page, f.action)
			continue
		}
		if len(typing) == 0 {
			continue
		}
		first := submits[0]
		class, _ := attr(first, "class")
		if !slices.Contains(strings.Fields(class), "btn-primary") {
			value, _ := attr(first, "value")
			t.Errorf("%s: Enter in the form to %s presses %q (action=%q), not its primary button", page, f.action, text(first), value)
		}
	}
}

func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.TrimSpace(b.String())
}

// TestEveryFormsEnterKeyDoesItsPrimaryAction walks every page of the
// portal that has a form, at every step of the multi-step forms, and
// checks what Enter in its fields would press. TestBrowserEnterKey
// presses it in Chromium.
func TestEveryFormsEnterKeyDoesItsPrimaryAction(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	admin := g.addAccount(testEmail, testName, testPassword)
	linkOrg(t, admin.ID, "12345678", "Bouwbedrijf Test B.V.", "loa3")
	linkOrg(t, admin.ID, "87654321", "Installatiebedrijf Test B.V.", "loa3")

	check := func(b *browser, page, step string) {
		t.Helper()
		resp, body := b.page(page)
		expectStatus(t, resp, body, http.StatusOK)
		checkEnterKey(t, page+step, body)
	}
	// codeSteps walks a form that proves an address with a code, checking
	// each step.
	codeSteps := func(path, email string) {
		t.Helper()
		b := g.newBrowser()
		check(b, path, "")
		if resp, body := b.submit(path, path, url.Values{"action": {"send"}, "email": {email}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s send: %d\n%s", path, resp.StatusCode, body)
		}
		check(b, path, " (code step)")
		code := sixDigits.FindStringSubmatch(g.SMTP.WaitFor(t, email, 10*time.Second).Text)
		if code == nil {
			t.Fatalf("no code mailed to %s", email)
		}
		if resp, body := b.post(path, url.Values{"action": {"verify"}, "code": {code[1]}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s verify: %d\n%s", path, resp.StatusCode, body)
		}
		check(b, path, " (verified step)")
	}
	codeSteps("/register", "nieuw@example.nl")
	codeSteps("/password/forgot", testEmail)

	anon := g.newBrowser()
	check(anon, "/login", "")
	check(anon, "/eherkenning", "")
	// The way on to eHerkenning after logging in.
	resp, body := anon.submit("/login", "/login", url.Values{"email": {testEmail}, "password": {testPassword}, "return": {"/eherkenning/start"}})
	expectStatus(t, resp, body, http.StatusOK)
	checkEnterKey(t, "/login on the way to eHerkenning", body)

	// The dashboard with a company to switch to, the admin page with a
	// member and a pending invitation, an invitation for someone else.
	b := g.newBrowser()
	b.login(testEmail, testPassword)
	check(b, "/dashboard", "")
	invite := func(email string) string {
		t.Helper()
		if resp, body := b.submit("/org/12345678", "/org/12345678/invite", url.Values{"email": {email}, "apps": {"website"}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("invite: %d\n%s", resp.StatusCode, body)
		}
		link := inviteURL.FindString(g.SMTP.WaitFor(t, email, 10*time.Second).Text)
		if link == "" {
			t.Fatalf("no invitation link mailed to %s", email)
		}
		return strings.TrimPrefix(link, g.URL)
	}
	g.addAccount("collega@example.nl", "Collega", testPassword)
	colleague := g.newBrowser()
	colleague.login("collega@example.nl", testPassword)
	accepted := invite("collega@example.nl")
	check(colleague, accepted, "")
	if resp, body := colleague.submit(accepted, accepted, url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("accepting: %d\n%s", resp.StatusCode, body)
	}
	pending := invite("later@example.nl")
	check(b, "/org/12345678", "")
	check(b, pending, " (another address)")
}
