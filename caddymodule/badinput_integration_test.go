package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// No input makes a portal route answer 500. Every
// route gets hostile values (unknown option values, invalid UTF-8,
// overlong, missing, unknown IDs, malformed KvK numbers and tokens) from
// an organisation's admin, one of its members, an outsider and someone
// not logged in; every answer is below 500, and a malformed value is a
// 400 with a message.
func TestBadInputNeverAnswers500(t *testing.T) {
	outbox := t.TempDir()
	g := startGateway(t, "badinput.caddyfile", gatewayParams{Extra: fmt.Sprintf(`mail {
			from "Wij Techniek <noreply@wij-techniek.nl>"
			outbox %q
		}`, outbox)})
	const kvk = "11111111"
	adminAcct := g.addAccount("admin@a.nl", "Admin A", testPassword)
	linkOrg(t, adminAcct.ID, kvk, "Bedrijf A", "loa3")
	orgs := runningApp(t).orgs
	token, _, err := orgs.Invite(adminAcct.ID, kvk, "piet@a.nl", []string{"website"}, []string{"website"})
	if err != nil {
		t.Fatal(err)
	}
	piet := g.addAccount("piet@a.nl", "Piet", testPassword)
	if _, err := orgs.Accept(token, storage.Account{ID: piet.ID, Email: "piet@a.nl"}); err != nil {
		t.Fatal(err)
	}
	_, pending, err := orgs.Invite(adminAcct.ID, kvk, "kees@a.nl", nil, []string{"website"})
	if err != nil {
		t.Fatal(err)
	}
	outsider := g.addAccount("mallory@b.nl", "Mallory", testPassword)
	linkOrg(t, outsider.ID, "22222222", "Bedrijf B", "loa3")

	actors := map[string]*browser{}
	for name, email := range map[string]string{"admin": "admin@a.nl", "member": "piet@a.nl", "outsider": "mallory@b.nl", "anonymous": ""} {
		b := g.newBrowser()
		if email != "" {
			b.login(email, testPassword)
		} else {
			b.page("/login") // the anti-forgery cookie
		}
		actors[name] = b
	}
	loggedIn := []string{"admin", "member", "outsider"}
	everyone := append(slices.Clone(loggedIn), "anonymous")

	const badUTF8 = "\xff\xfe\xfd"
	long := strings.Repeat("a", 5<<10)
	longID := strings.Repeat("u", 200)
	orgPath := "/org/" + kvk
	for _, tc := range []struct {
		name   string
		method string
		path   string
		form   url.Values
		// raw, when set, is sent as the body with the content type ctype
		// instead of form.
		raw, ctype string
		// bad are the actors for whom the value reaches its check:
		// they get 400. The others may be sent to log in or refused.
		bad []string
		// status, when set, is the answer every actor gets.
		status int
	}{
		// Pages.
		{name: "home with an unknown language", method: "GET", path: "/?lang=xx" + badUTF8},
		{name: "login page with a hostile return", method: "GET", path: "/login?return=" + url.QueryEscape("//evil.example/"+badUTF8)},
		{name: "login page with an overlong return", method: "GET", path: "/login?return=" + long},
		{name: "account", method: "GET", path: "/account"},
		{name: "eherkenning", method: "GET", path: "/eherkenning"},
		{name: "eherkenning metadata", method: "GET", path: "/eherkenning/metadata"},
		{name: "eherkenning start", method: "GET", path: "/eherkenning/start?return=" + url.QueryEscape(badUTF8)},
		{name: "health", method: "GET", path: "/healthz?x=" + badUTF8},
		{name: "keys", method: "GET", path: "/.well-known/jwks.json"},
		{name: "static, outside the folder", method: "GET", path: "/static/..%2f..%2fportal.go"},
		{name: "eherkenning answer, garbage artifact", method: "GET", path: "/eherkenning/acs?SAMLart=" + url.QueryEscape(badUTF8+long), bad: everyone},
		{name: "eherkenning answer, well-formed unknown artifact", method: "GET", path: "/eherkenning/acs?SAMLart=AAQAAMFbLinlXaCM%2BFIxiDwGOLAy2T71gbQO7ZhNzAgEANlB90ECfpNEVLg%3D", bad: everyone},
		{name: "eherkenning answer, no artifact", method: "GET", path: "/eherkenning/acs", bad: everyone},
		{name: "eherkenning answer, garbage response", method: "POST", path: "/eherkenning/acs", form: url.Values{"SAMLResponse": {badUTF8 + long}}, bad: everyone},
		// A broker's signed and encrypted answer can be far larger than
		// our own forms; it is refused for what it is, not for its size.
		{name: "eherkenning answer, a large response", method: "POST", path: "/eherkenning/acs", form: url.Values{"SAMLResponse": {strings.Repeat("PHNhbWxwOlJlc3BvbnNlLz4=", 4<<10)}}, bad: everyone},
		{name: "eherkenning answer, XML with an entity", method: "POST", path: "/eherkenning/acs",
			form: url.Values{"SAMLResponse": {"PCFET0NUWVBFIHggWzwhRU5USVRZIGEgIngiPl0+PHg+JmE7PC94Pg=="}}, bad: everyone},
		{name: "eherkenning completion, unknown token", method: "GET", path: "/eherkenning/complete?t=" + url.QueryEscape(badUTF8), bad: everyone},
		{name: "eherkenning completion, no token", method: "GET", path: "/eherkenning/complete", bad: everyone},
		{name: "register page", method: "GET", path: "/register?sent=1&verified=1&return=" + badUTF8},
		{name: "reset page", method: "GET", path: "/password/forgot?sent=1"},
		{name: "reset done", method: "GET", path: "/password/done"},
		{name: "dashboard", method: "GET", path: "/dashboard?linked=" + badUTF8},
		{name: "admin page", method: "GET", path: orgPath},
		{name: "admin page of a malformed KvK", method: "GET", path: "/org/1234", bad: loggedIn},
		{name: "admin page of an encoded KvK", method: "GET", path: "/org/1111%2F1111", bad: loggedIn},
		{name: "admin page of a KvK in invalid UTF-8", method: "GET", path: "/org/%FF%FE", bad: loggedIn},
		{name: "admin page of an unknown KvK", method: "GET", path: "/org/99999999"},
		{name: "admin page, page 0", method: "GET", path: orgPath + "?page=0", bad: loggedIn},
		{name: "admin page, page not a number", method: "GET", path: orgPath + "?page=" + badUTF8, bad: loggedIn},
		{name: "admin page, page beyond the end", method: "GET", path: orgPath + "?page=999999"},
		{name: "invitation, unknown token", method: "GET", path: "/invite/unknown"},
		{name: "invitation, overlong token", method: "GET", path: "/invite/" + long},
		{name: "dev mail", method: "GET", path: "/dev/mail"},
		{name: "dev mail, unknown message", method: "GET", path: "/dev/mail/" + url.PathEscape("../../etc/passwd")},
		{name: "not a page", method: "GET", path: "/nothing/" + url.PathEscape(badUTF8)},

		// Login and logout.
		{name: "login, invalid UTF-8", method: "POST", path: "/login", form: url.Values{"email": {badUTF8}, "password": {badUTF8}}, bad: everyone},
		{name: "login, overlong", method: "POST", path: "/login", form: url.Values{"email": {long}, "password": {long}}, bad: everyone},
		{name: "login, missing fields", method: "POST", path: "/login", form: url.Values{}, bad: everyone},
		{name: "login, not a form", method: "POST", path: "/login", raw: `{"email":"admin@a.nl"}`, ctype: "application/json"},
		{name: "login, multipart", method: "POST", path: "/login", raw: "--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n" +
			"--x\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\n" + badUTF8 + "\r\n--x--\r\n",
			ctype: "multipart/form-data; boundary=x", bad: everyone},
		{name: "login, hostile return", method: "POST", path: "/login", form: url.Values{"email": {"nobody@a.nl"}, "password": {"wrong password here"}, "return": {"javascript:alert(1)" + badUTF8}}},

		// Registration and reset.
		{name: "register, unknown field", method: "POST", path: "/register", form: url.Values{"action": {"send"}, "email": {"x@a.nl"}, "admin": {"1"}}, bad: everyone},
		{name: "register, invalid UTF-8 address", method: "POST", path: "/register", form: url.Values{"action": {"send"}, "email": {badUTF8}}, bad: everyone},
		{name: "register, overlong address", method: "POST", path: "/register", form: url.Values{"action": {"send"}, "email": {long}}, bad: everyone},
		{name: "register, unknown action", method: "POST", path: "/register", form: url.Values{"action": {badUTF8}}},
		{name: "register, create out of step", method: "POST", path: "/register", form: url.Values{"action": {"create"}, "password": {long}, "name": {badUTF8}}},
		{name: "reset, unknown field", method: "POST", path: "/password/forgot", form: url.Values{"action": {"send"}, "role": {"admin"}}, bad: everyone},
		{name: "reset, invalid UTF-8 address", method: "POST", path: "/password/forgot", form: url.Values{"action": {"send"}, "email": {badUTF8}}, bad: everyone},
		{name: "reset, verify out of step", method: "POST", path: "/password/forgot", form: url.Values{"action": {"verify"}, "code": {long}}},

		// Dashboard.
		{name: "switch to a malformed KvK", method: "POST", path: "/dashboard/active", form: url.Values{"kvk": {"1234" + badUTF8}}, bad: loggedIn},
		{name: "switch without a KvK", method: "POST", path: "/dashboard/active", form: url.Values{}, bad: loggedIn},
		{name: "switch with an unknown field", method: "POST", path: "/dashboard/active", form: url.Values{"kvk": {kvk}, "role": {"admin"}}, bad: loggedIn},
		{name: "switch to an unknown organisation", method: "POST", path: "/dashboard/active", form: url.Values{"kvk": {"99999999"}}},

		// Organisation actions.
		{name: "role owner", method: "POST", path: orgPath + "/role/" + piet.ID, form: url.Values{"role": {"owner"}}, bad: []string{"admin"}},
		{name: "role missing", method: "POST", path: orgPath + "/role/" + piet.ID, form: url.Values{}, bad: []string{"admin"}},
		{name: "role in invalid UTF-8", method: "POST", path: orgPath + "/role/" + piet.ID, form: url.Values{"role": {badUTF8}}, bad: []string{"admin"}},
		{name: "role of an unknown member", method: "POST", path: orgPath + "/role/u-aaaaaaaaaaaaaaaaaaaaaaaaaa", form: url.Values{"role": {"admin"}}},
		{name: "role of a malformed member", method: "POST", path: orgPath + "/role/" + url.PathEscape("u-"+badUTF8), form: url.Values{"role": {"admin"}}, bad: loggedIn},
		{name: "role of an overlong member", method: "POST", path: orgPath + "/role/" + longID, form: url.Values{"role": {"admin"}}, bad: loggedIn},
		{name: "role without a member", method: "POST", path: orgPath + "/role", form: url.Values{"role": {"admin"}}, bad: loggedIn},
		{name: "apps unknown", method: "POST", path: orgPath + "/apps/" + piet.ID, form: url.Values{"apps": {"payroll"}}, bad: []string{"admin"}},
		{name: "apps in invalid UTF-8", method: "POST", path: orgPath + "/apps/" + piet.ID, form: url.Values{"apps": {badUTF8, long}}, bad: []string{"admin"}},
		{name: "apps, not a form", method: "POST", path: orgPath + "/apps/" + piet.ID, raw: `{"apps":["website"]}`, ctype: "application/json"},
		{name: "remove an unknown member", method: "POST", path: orgPath + "/remove/u-aaaaaaaaaaaaaaaaaaaaaaaaaa", form: url.Values{}},
		{name: "remove in a malformed KvK", method: "POST", path: "/org/" + url.PathEscape(badUTF8) + "/remove/" + piet.ID, form: url.Values{}, bad: loggedIn},
		{name: "invite, invalid address", method: "POST", path: orgPath + "/invite", form: url.Values{"email": {"not an address"}}, bad: []string{"admin"}},
		{name: "invite, invalid UTF-8", method: "POST", path: orgPath + "/invite", form: url.Values{"email": {badUTF8}}, bad: []string{"admin"}},
		{name: "invite, overlong", method: "POST", path: orgPath + "/invite", form: url.Values{"email": {long + "@a.nl"}}, bad: []string{"admin"}},
		{name: "invite, missing address", method: "POST", path: orgPath + "/invite", form: url.Values{"apps": {"website"}}, bad: []string{"admin"}},
		{name: "invite, unknown app", method: "POST", path: orgPath + "/invite", form: url.Values{"email": {"jan@a.nl"}, "apps": {"payroll"}}, bad: []string{"admin"}},
		{name: "withdraw an unknown invitation", method: "POST", path: orgPath + "/withdraw/unknown", form: url.Values{}},
		{name: "withdraw a malformed invitation", method: "POST", path: orgPath + "/withdraw/" + url.PathEscape("a/b"+badUTF8), form: url.Values{}, bad: loggedIn},
		{name: "withdraw in another organisation", method: "POST", path: "/org/22222222/withdraw/" + pending.ID, form: url.Values{}},
		{name: "an unknown action", method: "POST", path: orgPath + "/promote/" + piet.ID, form: url.Values{}},

		// Invitations.
		{name: "accept an unknown invitation", method: "POST", path: "/invite/unknown", form: url.Values{}},
		{name: "accept an overlong invitation", method: "POST", path: "/invite/" + long, form: url.Values{}},
		{name: "accept with extra fields", method: "POST", path: "/invite/unknown", form: url.Values{"role": {"admin"}, "kvk": {kvk}}},

		// Bodies the portal cannot read.
		{name: "an oversized form", method: "POST", path: orgPath + "/invite", form: url.Values{"email": {strings.Repeat("a", 64<<10)}}, status: http.StatusRequestEntityTooLarge},
		{name: "a form with broken escapes", method: "POST", path: "/login", raw: "email=%zz&csrf={csrf}", ctype: "application/x-www-form-urlencoded", bad: everyone},

		// Logout, last: it ends each actor's session.
		{name: "logout without a token", method: "POST", path: "/logout", raw: "role=admin", ctype: "application/x-www-form-urlencoded"},
		{name: "logout with unknown fields", method: "POST", path: "/logout", form: url.Values{"all": {badUTF8}}},
	} {
		for _, actor := range everyone {
			t.Run(tc.name+"/"+actor, func(t *testing.T) {
				b := actors[actor]
				var resp *http.Response
				var body string
				switch {
				case tc.method == http.MethodGet:
					resp, body = b.page(tc.path)
				case tc.raw != "":
					target := g.URL + tc.path
					resp, body = b.doRaw(target, tc.ctype, tc.raw)
				default:
					form := url.Values{}
					for k, v := range tc.form {
						form[k] = v
					}
					resp, body = b.post(tc.path, form)
				}
				if resp.StatusCode >= 500 {
					t.Fatalf("%s %s: %d\n%s", tc.method, tc.path, resp.StatusCode, body)
				}
				if slices.Contains(tc.bad, actor) && resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("%s %s: %d, want 400\n%s", tc.method, tc.path, resp.StatusCode, body)
				}
				if tc.status != 0 && resp.StatusCode != tc.status {
					t.Fatalf("%s %s: %d, want %d\n%s", tc.method, tc.path, resp.StatusCode, tc.status, body)
				}
			})
		}
	}
	// None of it changed the member it aimed at.
	if m, err := runningApp(t).orgs.Store.Membership(kvk, piet.ID); err != nil || m.Role != "member" || !slices.Equal(m.Apps, []string{"website"}) {
		t.Fatalf("piet's membership changed: %+v %v", m, err)
	}
}

// doRaw posts body as it is, with content type ctype; "{csrf}" in body
// becomes the browser's anti-forgery token.
func (b *browser) doRaw(target, ctype, body string) (*http.Response, string) {
	b.t.Helper()
	body = strings.ReplaceAll(body, "{csrf}", b.cookie("__Host-wijgate_csrf"))
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Origin", b.g.URL)
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}
