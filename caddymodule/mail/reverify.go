package mail

import (
	"fmt"
	"time"
)

// ReverifyReminderMessage tells an admin of orgName that the eHerkenning
// verification by holderName (the recipient themselves when own) lapses
// at lapses (shown in Dutch time), what happens then, and how to verify
// again (dashboardURL; no button when empty).
func ReverifyReminderMessage(lang Lang, to, orgName, holderName string, own bool, lapses time.Time, dashboardURL string) Message {
	cat := catalogueFor(lang)
	orgName, holderName, lapses = oneLine(orgName), oneLine(holderName), lapses.In(amsterdam)
	var c content
	if lang == LangEN {
		c = content{
			Subject: "Verify " + orgName + " again with eHerkenning",
			Lead: []string{
				fmt.Sprintf("The eHerkenning verification of %s by %s expires on %s.", orgName, holderName, dateTimeEN(lapses)),
				"eHerkenning does not tell us when a machtiging is withdrawn, so a verification has to be renewed now and then.",
			},
			After: []string{
				"After that date the verification no longer counts: colleagues whose access rests on it lose access until an admin of " + orgName + " verifies the company again. Their access then returns by itself.",
			},
		}
		if own {
			c.Lead[0] = fmt.Sprintf("Your eHerkenning verification of %s expires on %s.", orgName, dateTimeEN(lapses))
			c.Lead = append(c.Lead, "Log in and choose ‘Verify again’ on your dashboard.")
		} else {
			c.Lead = append(c.Lead, "If you hold a machtiging for the company yourself, you can verify it too: log in and choose ‘Link another company’ on your dashboard.")
		}
		if dashboardURL != "" {
			c.Buttons = []link{{Label: "To my dashboard", URL: dashboardURL}}
		}
	} else {
		c = content{
			Subject: "Verifieer " + orgName + " opnieuw met eHerkenning",
			Lead: []string{
				fmt.Sprintf("De eHerkenning-verificatie van %s door %s verloopt op %s.", orgName, holderName, dateTimeNL(lapses)),
				"eHerkenning laat ons niet weten wanneer een machtiging wordt ingetrokken. Daarom moet een verificatie af en toe worden vernieuwd.",
			},
			After: []string{
				"Na die datum telt de verificatie niet meer: collega's van wie de toegang erop rust, verliezen hun toegang tot een beheerder van " + orgName + " het bedrijf opnieuw verifieert. Daarna hebben zij vanzelf weer toegang.",
			},
		}
		if own {
			c.Lead[0] = fmt.Sprintf("Je eHerkenning-verificatie van %s verloopt op %s.", orgName, dateTimeNL(lapses))
			c.Lead = append(c.Lead, "Log in en kies ‘Opnieuw verifiëren’ op je dashboard.")
		} else {
			c.Lead = append(c.Lead, "Heb je zelf een machtiging voor het bedrijf? Dan kun je het ook zelf verifiëren: log in en kies ‘Nog een bedrijf koppelen’ op je dashboard.")
		}
		if dashboardURL != "" {
			c.Buttons = []link{{Label: "Naar mijn dashboard", URL: dashboardURL}}
		}
	}
	return cat.message(to, c)
}
