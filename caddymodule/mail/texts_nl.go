package mail

import (
	"fmt"
	"time"
)

// textsNL holds every Dutch text. Values in content are plain text; the
// layout escapes them for HTML.
var textsNL = catalogue{
	lang:       LangNL,
	greeting:   "Hallo,",
	signature:  []string{"Met vriendelijke groet,", "Wij Techniek"},
	buttonHelp: "Werkt een knop niet? Kopieer dan de link naar je browser:",
	footer:     "Dit is een automatisch bericht. Je kunt niet op deze e-mail reageren.",

	verificationCode: func(code, purpose string, minutes int) content {
		c := content{Code: code}
		notYou := "Heb je dit niet zelf aangevraagd? Dan kun je deze e-mail negeren."
		if purpose == PurposeReset {
			c.Subject = "Je code om een nieuw wachtwoord in te stellen"
			c.Lead = []string{"Je wilt een nieuw wachtwoord instellen voor je account bij Wij Techniek. Vul deze code in om verder te gaan:"}
			notYou += " Je wachtwoord blijft dan hetzelfde."
		} else {
			c.Subject = "Je code om je account te maken"
			c.Lead = []string{"Je wilt een account maken bij Wij Techniek. Vul deze code in om je e-mailadres te bevestigen:"}
			notYou += " Er wordt dan geen account gemaakt."
		}
		c.After = []string{
			fmt.Sprintf("De code is %s geldig.", minutesNL(minutes)),
			notYou,
			"Geef deze code aan niemand anders. Wij Techniek vraagt je nooit om je code of je wachtwoord.",
		}
		return c
	},

	alreadyRegistered: func(loginURL, resetURL string) content {
		return content{
			Subject: "Je hebt al een account bij Wij Techniek",
			Lead: []string{
				"Iemand wilde een account maken met dit e-mailadres. Er is al een account met dit adres. Daarom is er geen nieuw account gemaakt.",
				"Was jij dat? Log dan in met je account. Weet je je wachtwoord niet meer? Stel dan een nieuw wachtwoord in.",
			},
			Buttons: []link{
				{Label: "Inloggen", URL: loginURL},
				{Label: "Nieuw wachtwoord instellen", URL: resetURL},
			},
			After: []string{"Was jij dit niet? Dan hoef je niets te doen. Er is niets veranderd aan je account."},
		}
	},

	noAccount: func(registerURL string) content {
		return content{
			Subject: "Nieuw wachtwoord aangevraagd bij Wij Techniek",
			Lead: []string{
				"Iemand vroeg een nieuw wachtwoord aan voor dit e-mailadres. Er is geen account bij Wij Techniek met dit adres.",
				"Wil je een account? Maak er dan een aan.",
			},
			Buttons: []link{{Label: "Account aanmaken", URL: registerURL}},
			After:   []string{"Was jij dit niet? Dan hoef je niets te doen."},
		}
	},

	passwordChanged: func(when time.Time) content {
		return content{
			Subject: "Je wachtwoord is gewijzigd",
			Lead:    []string{fmt.Sprintf("Het wachtwoord van je account bij Wij Techniek is gewijzigd op %s.", dateTimeNL(when))},
			After: []string{
				"Was jij dit? Dan hoef je niets te doen.",
				"Was jij dit niet? Stel dan meteen een nieuw wachtwoord in met ‘Wachtwoord vergeten’ op de inlogpagina. Laat het ook je beheerder weten.",
			},
		}
	},

	invitation: func(orgName, inviterName, acceptURL string, apps []string, expires time.Time) content {
		c := content{
			Subject: "Uitnodiging voor " + orgName,
			Lead:    []string{fmt.Sprintf("%s nodigt je uit voor %s bij Wij Techniek.", inviterName, orgName)},
			Items:   apps,
			Buttons: []link{{Label: "Uitnodiging accepteren", URL: acceptURL}},
			After: []string{
				fmt.Sprintf("Deze uitnodiging is geldig tot %s.", dateTimeNL(expires)),
				"Had je deze uitnodiging niet verwacht? Dan kun je deze e-mail negeren.",
			},
		}
		if inviterName == "" {
			c.Lead[0] = fmt.Sprintf("Je bent uitgenodigd voor %s bij Wij Techniek.", orgName)
		}
		if len(apps) > 0 {
			c.Lead = append(c.Lead, "Als je de uitnodiging accepteert, kun je deze apps gebruiken:")
		}
		return c
	},
}

// minutesNL says n minutes in Dutch.
func minutesNL(n int) string {
	if n == 1 {
		return "1 minuut"
	}
	return fmt.Sprintf("%d minuten", n)
}

// monthsNL are the Dutch month names, January first.
var monthsNL = [12]string{"januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober", "november", "december"}

// dateTimeNL formats t (already in Dutch time) as "2 januari 2026 om 15:04
// (Nederlandse tijd)".
func dateTimeNL(t time.Time) string {
	return fmt.Sprintf("%d %s %d om %s (Nederlandse tijd)", t.Day(), monthsNL[t.Month()-1], t.Year(), t.Format("15:04"))
}
