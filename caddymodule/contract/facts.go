// Package contract is the identity contract between wijgate and the
// applications behind it: each fact wijgate asserts about a person, with
// the header, placeholders and token claim that carry it and how its value
// is encoded; and the cookies that are wijgate's own, which no application
// receives. It knows nothing of Caddy, so the guard, the token, the
// configuration checks and the README's table all read the one table here.
package contract

import "strings"

// Fact is one thing wijgate asserts about the person behind a request.
type Fact uint8

// The facts, in the order they are listed and sent.
const (
	UserID Fact = iota
	UserEmail
	UserName
	OrgKvK
	OrgName
	OrgRole
	Apps
	Assurance
	Assertion
	factCount
)

// Encoding is how a fact's value is written into its header.
type Encoding uint8

const (
	// Plain values are sent as they are: wijgate made them or checked
	// them, so they are printable ASCII.
	Plain Encoding = iota
	// Percent values are free text: bytes outside printable ASCII, and
	// '%' itself, become %XX of their UTF-8 encoding.
	Percent
	// CommaList values are a list of names joined by commas.
	CommaList
	// SignedToken is the signed JWT carrying the other facts.
	SignedToken
)

// definition is one row of the contract.
type definition struct {
	// name is the fact's name in the `headers` and `alias` options.
	name   string
	header string
	// placeholders answer the fact in Caddy's replacer; the first is
	// wijgate's own.
	placeholders []string
	// claim is the fact's claim in the signed token; the token itself
	// has none.
	claim    string
	encoding Encoding
	// needsOrg: the fact is about the organisation the person acts for,
	// so it is absent when there is none.
	needsOrg bool
	// optIn: the fact is sent only on routes that ask for it, not by
	// default. The signed token is ~700 bytes on every request, read
	// only by apps that verify it.
	optIn bool
	// description is the README's explanation of the header's value.
	description string
}

// contract is the one table of the identity contract.
var contract = [factCount]definition{
	UserID: {
		name: "id", header: "X-Wij-User-Id", placeholders: []string{"wijgate.user.id", "http.auth.user.id"},
		claim: "sub", encoding: Plain,
		description: "stable account ID, e.g. `u-j35px67hkgvtoxupnkeijz3v5y`",
	},
	UserEmail: {
		name: "email", header: "X-Wij-User-Email", placeholders: []string{"wijgate.user.email"},
		claim: "email", encoding: Plain,
		description: "the account's verified email address, lower case",
	},
	UserName: {
		name: "name", header: "X-Wij-User-Name", placeholders: []string{"wijgate.user.name"},
		claim: "name", encoding: Percent,
		description: "full name; bytes outside printable ASCII and `%` are percent-encoded UTF-8 (`Jan J%C3%A4nssen`), decode as a URL path segment",
	},
	OrgKvK: {
		name: "org_kvk", header: "X-Wij-Org-Kvk", placeholders: []string{"wijgate.org.kvk"},
		claim: "org_kvk", encoding: Plain, needsOrg: true,
		description: "KvK number (8 digits) of the organisation the person acts for",
	},
	OrgName: {
		name: "org_name", header: "X-Wij-Org-Name", placeholders: []string{"wijgate.org.name"},
		claim: "org_name", encoding: Percent, needsOrg: true,
		description: "its name, encoded like the user name",
	},
	OrgRole: {
		name: "org_role", header: "X-Wij-Org-Role", placeholders: []string{"wijgate.org.role"},
		claim: "role", encoding: Plain, needsOrg: true,
		description: "`admin` or `member`",
	},
	Apps: {
		name: "apps", header: "X-Wij-Apps", placeholders: []string{"wijgate.apps"},
		claim: "apps", encoding: CommaList, needsOrg: true,
		description: "the apps this person may use for this organisation, comma-separated (`declaratie,rie,website`); admins have every app",
	},
	Assurance: {
		name: "assurance", header: "X-Wij-Assurance", placeholders: []string{"wijgate.assurance"},
		claim: "assurance", encoding: Plain, needsOrg: true,
		description: "how the membership is anchored: `eh3` or `eh4` (verified with eHerkenning at that level), `invited` (invited by an anchored admin)",
	},
	Assertion: {
		name: "assertion", header: "X-Wij-Assertion", encoding: SignedToken, optIn: true,
		description: "a signed JWT with the same facts, for apps that verify rather than trust (below); sent only on routes with the `assertion` option",
	},
}

// AppPlaceholder answers the name of the app the guard let the request
// through to; it is about the route, not the person, so it is no fact.
const AppPlaceholder = "wijgate.app"

// All returns every fact, in order.
func All() []Fact {
	all := make([]Fact, factCount)
	for i := range all {
		all[i] = Fact(i)
	}
	return all
}

// Name is the fact's name in the `headers` and `alias` options.
func (f Fact) Name() string { return contract[f].name }

// Header is the header that carries the fact, in canonical form.
func (f Fact) Header() string { return contract[f].header }

// Placeholders are the replacer keys that answer the fact.
func (f Fact) Placeholders() []string { return contract[f].placeholders }

// Claim is the fact's claim in the signed token; empty for the token.
func (f Fact) Claim() string { return contract[f].claim }

// Encoding is how the fact's header value is written.
func (f Fact) Encoding() Encoding { return contract[f].encoding }

// NeedsOrg reports whether the fact is about the active organisation,
// and so absent without one.
func (f Fact) NeedsOrg() bool { return contract[f].needsOrg }

// Description explains the header's value, for the README.
func (f Fact) Description() string { return contract[f].description }

var (
	byName        = make(map[string]Fact, factCount)
	byPlaceholder = make(map[string]Fact, factCount+1)
)

func init() {
	for _, f := range All() {
		byName[f.Name()] = f
		for _, p := range f.Placeholders() {
			byPlaceholder[p] = f
		}
	}
}

// Defaults names the facts a route sends when it lists none, in order:
// all but those sent only on request.
func Defaults() []string {
	var names []string
	for _, d := range contract {
		if !d.optIn {
			names = append(names, d.name)
		}
	}
	return names
}

// ByName finds a fact by its name in the `headers` and `alias` options.
func ByName(name string) (Fact, bool) {
	f, ok := byName[name]
	return f, ok
}

// ByPlaceholder finds the fact a replacer key answers.
func ByPlaceholder(key string) (Fact, bool) {
	f, ok := byPlaceholder[key]
	return f, ok
}

// Names lists every fact's name, in order, for error messages.
func Names() []string {
	names := make([]string, factCount)
	for i := range names {
		names[i] = contract[i].name
	}
	return names
}

// Encode writes a value of this encoding for a header: free text is
// percent-encoded; the other encodings are header-safe already.
func (e Encoding) Encode(s string) string {
	if e == Percent {
		return percentEncode(s)
	}
	return s
}

// JoinList writes a CommaList value.
func JoinList(items []string) string { return strings.Join(items, ",") }

// percentEncode makes any text safe for a header value: bytes outside
// printable ASCII, and '%' itself, become %XX of their UTF-8 encoding.
// Upstreams decode it as a URL path segment.
func percentEncode(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) * 3)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
