package portal

import "strings"

// device names the browser and system in a User-Agent, for the person's
// list of sessions: "Firefox op Windows". It reads only the well-known
// product tokens, in an order that sees through the ones browsers copy
// from each other (Edge and Opera say "Chrome", Chrome says "Safari", an
// iPhone says "like Mac OS X"). Anything else is an unknown device; the
// list is a help to recognise one's own sessions, not a proof.
func device(lang Lang, userAgent string) string {
	browser := firstToken(userAgent, userAgentBrowsers)
	system := firstToken(userAgent, userAgentSystems)
	switch {
	case browser != "" && system != "":
		return strings.NewReplacer("{browser}", browser, "{system}", system).Replace(lang.T("sessions.device"))
	case browser != "":
		return browser
	case system != "":
		return system
	}
	return lang.T("sessions.unknowndevice")
}

// userAgentToken is a name and the User-Agent fragments that give it
// away; the first entry with a fragment present wins.
type userAgentToken struct {
	name      string
	fragments []string
}

var userAgentBrowsers = []userAgentToken{
	{"Edge", []string{"Edg/", "EdgA/", "EdgiOS/"}},
	{"Opera", []string{"OPR/", "OPiOS/"}},
	{"Samsung Internet", []string{"SamsungBrowser/"}},
	{"Firefox", []string{"Firefox/", "FxiOS/"}},
	{"Chrome", []string{"CriOS/", "Chrome/"}},
	{"Safari", []string{"Version/"}},
	{"Internet Explorer", []string{"MSIE ", "Trident/"}},
}

var userAgentSystems = []userAgentToken{
	{"Windows", []string{"Windows"}},
	{"iPhone", []string{"iPhone"}},
	{"iPad", []string{"iPad"}},
	{"Android", []string{"Android"}},
	{"ChromeOS", []string{"CrOS"}},
	{"macOS", []string{"Macintosh", "Mac OS X"}},
	{"Linux", []string{"Linux"}},
}

func firstToken(userAgent string, tokens []userAgentToken) string {
	for _, t := range tokens {
		for _, f := range t.fragments {
			if strings.Contains(userAgent, f) {
				return t.name
			}
		}
	}
	return ""
}
