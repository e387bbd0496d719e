package mail

import (
	"strings"
	"testing"
	"time"
)

func TestReverifyReminderMessage(t *testing.T) {
	lapses := time.Date(2027, 3, 1, 23, 30, 0, 0, time.UTC) // 2 March 00:30 in Amsterdam
	for _, tc := range []struct {
		lang         Lang
		own          bool
		url          string
		want, absent []string
	}{
		{LangNL, true, "https://portal.example/dashboard", []string{"Verifieer Bouw B.V. opnieuw met eHerkenning", "Je eHerkenning-verificatie van Bouw B.V. verloopt op 2 maart 2027 om 00:30", "Opnieuw verifiëren", "Naar mijn dashboard:\nhttps://portal.example/dashboard"}, []string{"door Anna"}},
		{LangNL, false, "", []string{"De eHerkenning-verificatie van Bouw B.V. door Anna Admin verloopt", "Nog een bedrijf koppelen"}, []string{"Naar mijn dashboard"}},
		{LangEN, true, "https://portal.example/dashboard", []string{"Verify Bouw B.V. again with eHerkenning", "Your eHerkenning verification of Bouw B.V. expires on 2 March 2027 at 00:30", "Verify again"}, nil},
		{LangEN, false, "https://portal.example/dashboard", []string{"by Anna Admin expires", "Link another company"}, nil},
	} {
		m := ReverifyReminderMessage(tc.lang, "jan@example.nl", "Bouw B.V.", "Anna Admin", tc.own, lapses, tc.url)
		all := m.Subject + "\n" + m.Text
		for _, w := range tc.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s own=%v lacks %q:\n%s", tc.lang, tc.own, w, all)
			}
		}
		for _, w := range tc.absent {
			if strings.Contains(all, w) {
				t.Errorf("%s own=%v has %q:\n%s", tc.lang, tc.own, w, all)
			}
		}
		if m.HTML == "" || m.To != "jan@example.nl" {
			t.Errorf("%s: no HTML part or wrong recipient: %+v", tc.lang, m)
		}
	}
}
