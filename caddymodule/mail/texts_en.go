package mail

import (
	"fmt"
	"time"
)

// textsEN holds every English text. Values in content are plain text; the
// layout escapes them for HTML.
var textsEN = catalogue{
	lang:       LangEN,
	greeting:   "Hello,",
	signature:  []string{"Kind regards,", "Wij Techniek"},
	buttonHelp: "Button not working? Then copy the link into your browser:",
	footer:     "This is an automatic message. You cannot reply to this email.",

	verificationCode: func(code, purpose string, minutes int) content {
		c := content{Code: code}
		notYou := "Did you not ask for this? Then you can ignore this email."
		if purpose == PurposeReset {
			c.Subject = "Your code to set a new password"
			c.Lead = []string{"You want to set a new password for your Wij Techniek account. Enter this code to continue:"}
			notYou += " Your password stays the same."
		} else {
			c.Subject = "Your code to create your account"
			c.Lead = []string{"You want to create a Wij Techniek account. Enter this code to confirm your email address:"}
			notYou += " No account will be created."
		}
		c.After = []string{
			fmt.Sprintf("The code is valid for %s.", minutesEN(minutes)),
			notYou,
			"Do not give this code to anyone. Wij Techniek will never ask you for your code or your password.",
		}
		return c
	},

	alreadyRegistered: func(loginURL, resetURL string) content {
		return content{
			Subject: "You already have a Wij Techniek account",
			Lead: []string{
				"Someone tried to create an account with this email address. There already is an account with this address, so no new account was created.",
				"Was that you? Then log in with your account. Forgot your password? Then set a new one.",
			},
			Buttons: []link{
				{Label: "Log in", URL: loginURL},
				{Label: "Set a new password", URL: resetURL},
			},
			After: []string{"Was this not you? Then you do not need to do anything. Nothing has changed in your account."},
		}
	},

	noAccount: func(registerURL string) content {
		return content{
			Subject: "New password requested at Wij Techniek",
			Lead: []string{
				"Someone asked for a new password for this email address. There is no Wij Techniek account with this address.",
				"Would you like an account? Then create one.",
			},
			Buttons: []link{{Label: "Create an account", URL: registerURL}},
			After:   []string{"Was this not you? Then you do not need to do anything."},
		}
	},

	passwordChanged: func(when time.Time) content {
		return content{
			Subject: "Your password was changed",
			Lead:    []string{fmt.Sprintf("The password of your Wij Techniek account was changed on %s.", dateTimeEN(when))},
			After: []string{
				"Was this you? Then you do not need to do anything.",
				"Was this not you? Then set a new password right away with ‘Forgot password’ on the login page. Also tell your administrator.",
			},
		}
	},

	invitation: func(orgName, inviterName, acceptURL string, apps []string, expires time.Time) content {
		c := content{
			Subject: "Invitation to join " + orgName,
			Lead:    []string{fmt.Sprintf("%s invites you to join %s at Wij Techniek.", inviterName, orgName)},
			Items:   apps,
			Buttons: []link{{Label: "Accept invitation", URL: acceptURL}},
			After: []string{
				fmt.Sprintf("This invitation is valid until %s.", dateTimeEN(expires)),
				"Were you not expecting this invitation? Then you can ignore this email.",
			},
		}
		if inviterName == "" {
			c.Lead[0] = fmt.Sprintf("You are invited to join %s at Wij Techniek.", orgName)
		}
		if len(apps) > 0 {
			c.Lead = append(c.Lead, "Once you accept, you can use these apps:")
		}
		return c
	},
}

// minutesEN says n minutes in English.
func minutesEN(n int) string {
	if n == 1 {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", n)
}

// dateTimeEN formats t (already in Dutch time) as "2 January 2026 at 15:04
// (Amsterdam time)".
func dateTimeEN(t time.Time) string {
	return t.Format("2 January 2006 at 15:04") + " (Amsterdam time)"
}
