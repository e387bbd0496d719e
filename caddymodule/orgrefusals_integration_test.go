package caddymodule

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
)

// TestBadRoleValueRefusals: a role no form offers (role=owner) is refused
// for everyone, and each refusal goes where it belongs. The admin, who may
// change roles, gets 400 and the message, and nothing is audited: a
// mistyped value is no attempt beyond the admin's rights. A member gets
// 403 and the attempt is in the organisation's audit log. An outsider gets
// 403, the operator's log has the attempt, and the organisation's log
// stays as it was.
func TestBadRoleValueRefusals(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, "orgrefusals.caddyfile", gatewayParams{Storage: dir + "/store"})
	ab, _ := admin(t, g, "admin@a.nl", "11111111")
	bb, outsider := admin(t, g, "admin@b.nl", "22222222")
	token := invite(t, g, ab, "11111111", "piet@a.nl", "website")
	pb, piet := colleague(t, g, "piet@a.nl", token)
	owner := url.Values{"role": {"owner"}}
	path := "/org/11111111/role/" + piet.ID
	before := auditLog(t, "11111111")

	resp, body := ab.post(path, owner)
	expectStatus(t, resp, body, http.StatusBadRequest)
	if !strings.Contains(body, "Kies een rol: Admin of Medewerker.") {
		t.Fatalf("the admin's page does not say what is wrong:\n%s", body)
	}
	if m, err := runningApp(t).orgs.Store.Membership("11111111", piet.ID); err != nil || m.Role != "member" {
		t.Fatalf("after the admin's bad value: %+v, %v", m, err)
	}
	if after := auditLog(t, "11111111"); len(after) != len(before) {
		t.Fatalf("the admin's bad value was audited: %+v", after[0])
	}

	pb.page("/dashboard")
	resp, body = pb.post(path, owner)
	expectStatus(t, resp, body, http.StatusForbidden)
	entries := auditLog(t, "11111111")
	if len(entries) != len(before)+1 {
		t.Fatalf("the member's attempt made %d audit entries, want 1", len(entries)-len(before))
	}
	if e := entries[0]; e.Action != "denied" || e.Actor != piet.ID || e.Detail != "set_role" {
		t.Fatalf("the member's attempt was audited as %+v", e)
	}

	bb.page("/dashboard")
	resp, body = bb.post(path, owner)
	expectStatus(t, resp, body, http.StatusForbidden)
	if after := auditLog(t, "11111111"); len(after) != len(entries) {
		t.Fatalf("an outsider's attempt is in the organisation's log: %+v", after[0])
	}
	var logged bool
	for _, e := range operatorLog(t, dir+"/store-caddy.log") {
		if e["level"] == "warn" && e["msg"] == "refused" && e["account"] == outsider.ID &&
			e["kvk"] == "11111111" && e["action"] == "role" && e["path"] == path {
			logged = true
		}
	}
	if !logged {
		t.Fatal("no operator log line for the outsider's attempt")
	}
}

// operatorLog reads the server's JSON log, every field of every line.
func operatorLog(t *testing.T, file string) []map[string]any {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		lines = append(lines, line)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}
