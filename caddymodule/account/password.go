package account

import (
	_ "embed"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Password length bounds in Unicode code points after NormalizePassword.
// The minimum follows OWASP ASVS 2.1.1 and NIST 800-63B; the maximum
// admits long passphrases while capping the work a single request can ask
// of the hasher.
const (
	MinPasswordLength = 12
	MaxPasswordLength = 128
)

// PasswordReason is the machine-readable cause of a rejected password; the
// UI maps it to a translated message.
type PasswordReason string

// The reasons CheckPassword can give.
const (
	ReasonTooShort        PasswordReason = "too_short"
	ReasonTooLong         PasswordReason = "too_long"
	ReasonCommon          PasswordReason = "common"
	ReasonContainsEmail   PasswordReason = "contains_email"
	ReasonContainsService PasswordReason = "contains_service"
	ReasonInvalidUTF8     PasswordReason = "invalid_utf8"
)

// PasswordError reports why CheckPassword rejected a password.
type PasswordError struct {
	Reason PasswordReason
}

// Error implements error.
func (e *PasswordError) Error() string {
	return "account: password rejected: " + string(e.Reason)
}

// serviceName is the company name with every separator removed; passwords
// are compared against it after the same removal, so "Wij Techniek",
// "wij-techniek" and "WIJTECHNIEK" are all caught.
const serviceName = "wijtechniek"

// minEmailLocalPart is the shortest local part worth checking for: shorter
// ones ("jo", "a") occur by chance in many good passphrases.
const minEmailLocalPart = 3

//go:embed commonpasswords.txt
var commonPasswordsText string

// commonPasswords is the set of lower-cased common passwords, built on
// first use so programs that never check a password do not pay for it.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 10000)
	for line := range strings.Lines(commonPasswordsText) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		set[strings.ToLower(line)] = struct{}{}
	}
	return set
})

// NormalizePassword returns the NFKC form of pw, so that the same
// passphrase typed on different keyboards or systems (composed or
// decomposed accents, full-width forms) hashes the same. Nothing else is
// changed: spaces and case are part of the password.
func NormalizePassword(pw string) string {
	return norm.NFKC.String(pw)
}

// CheckPassword applies the password rules to pw, which must already have
// been passed through NormalizePassword, for the account with this email.
// It returns a *PasswordError, or nil if pw is acceptable. There are
// deliberately no composition rules (NIST 800-63B 5.1.1.2): length and a
// blocklist are what make a password strong.
func CheckPassword(pw, email string) error {
	if !utf8.ValidString(pw) {
		return &PasswordError{Reason: ReasonInvalidUTF8}
	}
	n := utf8.RuneCountInString(pw)
	if n < MinPasswordLength {
		return &PasswordError{Reason: ReasonTooShort}
	}
	if n > MaxPasswordLength {
		return &PasswordError{Reason: ReasonTooLong}
	}
	lower := strings.ToLower(pw)
	if _, ok := commonPasswords()[lower]; ok {
		return &PasswordError{Reason: ReasonCommon}
	}
	if local := emailLocalPart(email); utf8.RuneCountInString(local) >= minEmailLocalPart &&
		strings.Contains(lower, local) {
		return &PasswordError{Reason: ReasonContainsEmail}
	}
	if strings.Contains(stripSeparators(lower), serviceName) {
		return &PasswordError{Reason: ReasonContainsService}
	}
	return nil
}

// emailLocalPart returns the part of email before its last "@" (the local
// part may itself hold a quoted "@"), normalised and lower-cased the same
// way the password is for comparison.
func emailLocalPart(email string) string {
	if i := strings.LastIndex(email, "@"); i >= 0 {
		email = email[:i]
	}
	return strings.ToLower(NormalizePassword(email))
}

// stripSeparators removes spaces and the punctuation people put between
// words, so the service name is found however it is spaced.
func stripSeparators(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '-' || r == '_' || r == '.' {
			return -1
		}
		return r
	}, s)
}
