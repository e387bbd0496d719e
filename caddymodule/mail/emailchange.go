package mail

import (
	"fmt"
	"math"
	"time"
)

// The messages of an email change, kept apart from the catalogue so the
// change's texts read as one story: the code to the new address, the
// warning to the owner of an address that is taken, and the notice to the
// old address.
type emailChangeTexts struct {
	code    func(code string, minutes int) content
	inUse   func(resetURL string) content
	changed func(oldAddress, newAddress string, when time.Time, undoURL string, undoUntil time.Time) content
}

func emailChangeFor(lang Lang) (*catalogue, *emailChangeTexts) {
	if lang == LangEN {
		return &textsEN, &emailChangeEN
	}
	return &textsNL, &emailChangeNL
}

// EmailChangeCodeMessage is the mail with the code that proves the
// recipient owns the address an account is moving to.
func EmailChangeCodeMessage(lang Lang, to, code string, validFor time.Duration) Message {
	cat, t := emailChangeFor(lang)
	return cat.message(to, t.code(code, max(1, int(math.Ceil(validFor.Minutes())))))
}

// AddressInUseMessage is sent, instead of a code, to an address that
// already has an account when someone asks to move another account to
// it: nothing changed, and a way to a new password if the owner worries.
func AddressInUseMessage(lang Lang, to, resetURL string) Message {
	cat, t := emailChangeFor(lang)
	return cat.message(to, t.inUse(resetURL))
}

// EmailChangedMessage tells the old address that the account moved to
// newAddress at when, with a link (undoURL, valid until undoUntil) that
// moves it back and locks out whoever did it.
func EmailChangedMessage(lang Lang, oldAddress, newAddress string, when time.Time, undoURL string, undoUntil time.Time) Message {
	cat, t := emailChangeFor(lang)
	return cat.message(oldAddress, t.changed(oldAddress, newAddress, when.In(amsterdam), undoURL, undoUntil.In(amsterdam)))
}

var emailChangeNL = emailChangeTexts{
	code: func(code string, minutes int) content {
		return content{
			Subject: "Je code om je e-mailadres te wijzigen",
			Lead:    []string{"Je wilt dit e-mailadres gebruiken voor je account bij Wij Techniek. Vul deze code in om het te bevestigen:"},
			Code:    code,
			After: []string{
				fmt.Sprintf("De code is %s geldig.", minutesNL(minutes)),
				"Heb je dit niet zelf aangevraagd? Dan kun je deze e-mail negeren. Er verandert dan niets.",
				"Geef deze code aan niemand anders. Wij Techniek vraagt je nooit om je code of je wachtwoord.",
			},
		}
	},
	inUse: func(resetURL string) content {
		return content{
			Subject: "Iemand wilde jouw e-mailadres gebruiken",
			Lead: []string{
				"Iemand wilde dit e-mailadres gebruiken voor een ander account bij Wij Techniek. Er is al een account met dit adres: het jouwe. Daarom is er niets veranderd.",
			},
			After: []string{
				"Was jij dit? Dan hoef je niets te doen: je kunt je bestaande account gewoon blijven gebruiken.",
				"Was jij dit niet? Je account is veilig. Denk je dat iemand je wachtwoord kent, stel dan een nieuw wachtwoord in.",
			},
			Buttons: []link{{Label: "Nieuw wachtwoord instellen", URL: resetURL}},
		}
	},
	changed: func(oldAddress, newAddress string, when time.Time, undoURL string, undoUntil time.Time) content {
		return content{
			Subject: "Het e-mailadres van je account is gewijzigd",
			Lead: []string{
				fmt.Sprintf("Het e-mailadres van je account bij Wij Techniek is op %s gewijzigd:", dateTimeNL(when)),
			},
			Items: []string{"oud: " + oldAddress, "nieuw: " + newAddress},
			After: []string{
				"Was jij dit? Dan hoef je niets te doen. Je logt voortaan in met het nieuwe adres.",
				fmt.Sprintf("Was jij dit niet? Klik dan op ‘Dit was ik niet’ (kan tot %s). Dan zetten we je oude e-mailadres terug, melden we je account overal af en werkt het wachtwoord niet meer. Daarna stel je met ‘Wachtwoord vergeten’ een nieuw wachtwoord in, met dit e-mailadres. Laat het ook je beheerder weten.", dateTimeNL(undoUntil)),
			},
			Buttons: []link{{Label: "Dit was ik niet", URL: undoURL}},
		}
	},
}

var emailChangeEN = emailChangeTexts{
	code: func(code string, minutes int) content {
		return content{
			Subject: "Your code to change your email address",
			Lead:    []string{"You want to use this email address for your Wij Techniek account. Enter this code to confirm it:"},
			Code:    code,
			After: []string{
				fmt.Sprintf("The code is valid for %s.", minutesEN(minutes)),
				"Did you not ask for this? Then you can ignore this email. Nothing will change.",
				"Do not give this code to anyone. Wij Techniek will never ask you for your code or your password.",
			},
		}
	},
	inUse: func(resetURL string) content {
		return content{
			Subject: "Someone tried to use your email address",
			Lead: []string{
				"Someone tried to use this email address for another Wij Techniek account. There already is an account with this address: yours. So nothing was changed.",
			},
			After: []string{
				"Was this you? Then you do not need to do anything: just keep using your existing account.",
				"Was this not you? Your account is safe. If you think someone knows your password, set a new one.",
			},
			Buttons: []link{{Label: "Set a new password", URL: resetURL}},
		}
	},
	changed: func(oldAddress, newAddress string, when time.Time, undoURL string, undoUntil time.Time) content {
		return content{
			Subject: "The email address of your account was changed",
			Lead: []string{
				fmt.Sprintf("The email address of your Wij Techniek account was changed on %s:", dateTimeEN(when)),
			},
			Items: []string{"old: " + oldAddress, "new: " + newAddress},
			After: []string{
				"Was this you? Then you do not need to do anything. From now on you log in with the new address.",
				fmt.Sprintf("Was this not you? Then click ‘This was not me’ (possible until %s). We will put your old email address back, sign your account out everywhere and make the password stop working. Then set a new password with ‘Forgot password’, using this email address. Also tell your administrator.", dateTimeEN(undoUntil)),
			},
			Buttons: []link{{Label: "This was not me", URL: undoURL}},
		}
	},
}
