package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/wijtechniek/wijgate/caddymodule"
)

// answer is one of several requests sent at once.
type answer struct {
	status   int
	location string
	body     string
	err      error
}

// atOnce sends n requests at the same moment, the even ones to replica a
// and the odd ones to b, and returns their answers.
func (c *cluster) atOnce(n int, send func(at *faultServer) (*http.Response, string, error)) []answer {
	answers := make([]answer, n)
	var ready, wg sync.WaitGroup
	ready.Add(1)
	for i := range n {
		at := c.a
		if i%2 == 1 {
			at = c.b
		}
		wg.Go(func() {
			ready.Wait()
			resp, body, err := send(at)
			if err != nil {
				answers[i] = answer{err: err}
				return
			}
			answers[i] = answer{status: resp.StatusCode, location: resp.Header.Get("Location"), body: body}
		})
	}
	ready.Done()
	wg.Wait()
	return answers
}

// exactlyOnce fails the test unless exactly one answer is a success, and
// none failed without an answer or with a 500.
func exactlyOnce(t *testing.T, what string, answers []answer, success func(answer) bool) {
	t.Helper()
	won := 0
	for _, a := range answers {
		switch {
		case a.err != nil:
			t.Errorf("%s: %v", what, a.err)
		case a.status >= 500 && a.status != http.StatusServiceUnavailable:
			t.Errorf("%s: status %d\n%s", what, a.status, a.body)
		case success(a):
			won++
		}
	}
	if won != 1 {
		statuses := make([]int, len(answers))
		for i, a := range answers {
			statuses[i] = a.status
		}
		t.Errorf("%s: %d of %d parallel attempts on both replicas succeeded (statuses %v), want exactly one", what, won, len(answers), statuses)
	}
}

// artifactResponseAnswer takes the broker's Response out of a SOAP
// ArtifactResponse and encodes it as the HTTP-POST binding carries it
// (SAMLResponse). The namespaces it uses may be declared on the envelope,
// so those declarations go along; exclusive canonicalisation leaves the
// signatures intact.
func artifactResponseAnswer(soap []byte) (string, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(soap); err != nil {
		return "", err
	}
	resp := doc.FindElement("//ArtifactResponse/Response")
	if resp == nil {
		return "", errors.New("no Response in the ArtifactResponse")
	}
	out := resp.Copy()
	for el := resp.Parent(); el != nil; el = el.Parent() {
		for _, a := range el.Attr {
			if (a.Space == "xmlns" || a.Space == "" && a.Key == "xmlns") && out.SelectAttr(a.FullKey()) == nil {
				out.CreateAttr(a.FullKey(), a.Value)
			}
		}
	}
	d := etree.NewDocument()
	d.SetRoot(out)
	b, err := d.WriteToBytes()
	return base64.StdEncoding.EncodeToString(b), err
}

// logCount counts the lines of both replicas' logs that contain s.
func (c *cluster) logCount(s string) int {
	n := 0
	for _, r := range []*faultServer{c.a, c.b} {
		for i := 1; i <= r.starts; i++ {
			b, err := os.ReadFile(filepath.Join(r.dir, fmt.Sprintf("server-%d.log", i)))
			if err != nil {
				c.t.Fatal(err)
			}
			n += strings.Count(string(b), s)
		}
	}
	return n
}

// TestClusterOneTimeThingsStayOneTime sends what may be used once to both
// replicas at the same moment, several times over: a verification code,
// the broker's artifact, its assertion (replayed through the HTTP-POST
// binding), the parked eHerkenning result and an invitation are each used
// exactly once; wrong passwords on both replicas lock the address as if
// they had all reached one.
func TestClusterOneTimeThingsStayOneTime(t *testing.T) {
	const tries = 6
	c := startCluster(t)

	t.Run("a verification code", func(t *testing.T) {
		for round := range 5 {
			p := c.newPerson()
			email := fmt.Sprintf("code-%d@example.nl", round)
			if _, _, err := p.do(c.a, http.MethodGet, "/register", nil); err != nil {
				t.Fatal(err)
			}
			resp, body, err := p.post(c.a, "/register", url.Values{"action": {"send"}, "email": {email}})
			c.must(expect(resp, body, err, http.StatusSeeOther, "sending the code"))
			code := c.code(email)
			answers := c.atOnce(tries, func(at *faultServer) (*http.Response, string, error) {
				return p.post(at, "/register", url.Values{"action": {"verify"}, "code": {code}})
			})
			exactlyOnce(t, "verifying one code", answers, func(a answer) bool {
				return a.status == http.StatusSeeOther && strings.HasSuffix(a.location, "verified=1")
			})
		}
	})

	t.Run("login failures from both replicas count together", func(t *testing.T) {
		const email = "slot@example.nl"
		_, err := addAccountByAPI(c.admin, c.a.admin, email)
		c.must(err)
		// Five wrong passwords at once, each from its own client address,
		// on both replicas: five is the limit for one email address.
		answers := c.atOnce(5, func(at *faultServer) (*http.Response, string, error) {
			q := c.newPerson()
			if _, _, err := q.do(at, http.MethodGet, "/login", nil); err != nil {
				return nil, "", err
			}
			return q.post(at, "/login", url.Values{"email": {email}, "password": {"not the password at all"}})
		})
		for _, a := range answers {
			if a.err != nil || a.status != http.StatusUnauthorized && a.status != http.StatusTooManyRequests {
				t.Fatalf("a wrong password: %d %v", a.status, a.err)
			}
		}
		for _, at := range []*faultServer{c.a, c.b} {
			q := c.newPerson()
			if _, _, err := q.do(at, http.MethodGet, "/login", nil); err != nil {
				t.Fatal(err)
			}
			resp, body, err := q.post(at, "/login", url.Values{"email": {email}, "password": {faultsPassword}})
			c.must(expect(resp, body, err, http.StatusTooManyRequests, "the right password after five wrong ones on "+at.dir))
		}
	})

	// An anchored admin for the eHerkenning steps and the invitation.
	const adminEmail = "eenmalig@example.nl"
	_, err := addAccountByAPI(c.admin, c.b.admin, adminEmail)
	c.must(err)
	admin := c.newPerson()
	c.must(admin.login(c.a, adminEmail))

	t.Run("an artifact", func(t *testing.T) {
		back, err := admin.answerFromBroker(c.a, "40000001")
		c.must(err)
		answers := c.atOnce(tries, func(at *faultServer) (*http.Response, string, error) {
			return admin.do(at, http.MethodGet, back, nil)
		})
		var next string
		exactlyOnce(t, "presenting one artifact", answers, func(a answer) bool {
			if a.status == http.StatusSeeOther && strings.HasPrefix(a.location, "/eherkenning/complete?") {
				next = a.location
				return true
			}
			return false
		})
		if next != "" {
			c.must(admin.complete(c.b, next))
		}
	})

	t.Run("an assertion replayed", func(t *testing.T) {
		back, err := admin.answerFromBroker(c.a, "40000002")
		c.must(err)
		// b's ACS resolves the artifact, but the tap keeps the broker's
		// answer from it: the assertion is in the test's hands, unused.
		c.tap.armed.Store(true)
		resp, body, err := admin.do(c.b, http.MethodGet, back, nil)
		if err != nil || resp.StatusCode == http.StatusSeeOther {
			t.Fatalf("b's ACS without the broker's answer: %v %d\n%s", err, resp.StatusCode, body)
		}
		var soap []byte
		select {
		case soap = <-c.tap.withheld:
		case <-time.After(10 * time.Second):
			t.Fatal("no artifact resolution passed the tap")
		}
		samlResponse, err := artifactResponseAnswer(soap)
		c.must(err)
		u, err := url.Parse(back)
		c.must(err)
		relay := u.Query().Get("RelayState")
		replays := c.logCount(`"code":"replay"`)
		answers := c.atOnce(tries, func(at *faultServer) (*http.Response, string, error) {
			return admin.do(at, http.MethodPost, "/eherkenning/acs", url.Values{"SAMLResponse": {samlResponse}, "RelayState": {relay}})
		})
		var next string
		exactlyOnce(t, "presenting one assertion", answers, func(a answer) bool {
			if a.status == http.StatusSeeOther && strings.HasPrefix(a.location, "/eherkenning/complete?") {
				next = a.location
				return true
			}
			return false
		})
		if got := c.logCount(`"code":"replay"`) - replays; got != tries-1 {
			t.Errorf("the replicas logged %d refusals as a replay, want %d", got, tries-1)
		}
		if next != "" {
			c.must(admin.complete(c.a, next))
		}
	})

	const kvk = "40000003"
	t.Run("a parked eHerkenning result", func(t *testing.T) {
		back, err := admin.answerFromBroker(c.b, kvk)
		c.must(err)
		next, err := admin.acs(c.a, back)
		c.must(err)
		answers := c.atOnce(tries, func(at *faultServer) (*http.Response, string, error) {
			return admin.do(at, http.MethodGet, next, nil)
		})
		exactlyOnce(t, "collecting one parked result", answers, func(a answer) bool {
			return a.status == http.StatusOK && strings.Contains(a.body, "Jouw account is nu Admin account voor")
		})
	})

	t.Run("an invitation", func(t *testing.T) {
		const email = "uitgenodigd@example.nl"
		_, err := addAccountByAPI(c.admin, c.a.admin, email)
		c.must(err)
		token, err := admin.invite(c.b, kvk, email, "declaratie")
		c.must(err)
		invitee := c.newPerson()
		c.must(invitee.login(c.b, email))
		answers := c.atOnce(tries, func(at *faultServer) (*http.Response, string, error) {
			return invitee.post(at, "/invite/"+token, url.Values{})
		})
		exactlyOnce(t, "accepting one invitation", answers, func(a answer) bool {
			return a.status == http.StatusSeeOther && a.location == "/dashboard"
		})
		var o caddymodule.OrgSummary
		c.must(getAdminJSON(c.admin, "http://"+c.a.admin+"/wijgate/orgs/"+kvk, &o))
		n := 0
		for _, m := range o.Members {
			if m.Email == email {
				n++
			}
		}
		if n != 1 || len(o.Members) != 2 {
			t.Errorf("after the invitation %s has members %+v", kvk, o.Members)
		}
	})
}
