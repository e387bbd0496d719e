package contract

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// headerContractSection returns the README's "The header contract"
// section, up to its first subsection.
func headerContractSection(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## The header contract\n")
	if !ok {
		t.Fatal(`README.md has no "## The header contract" section`)
	}
	section, _, _ = strings.Cut(section, "\n#")
	return section
}

// readmeRow is a fact's row in the README's header table.
func readmeRow(f Fact) string {
	return "| `" + f.Header() + "` | " + f.Description() + " |"
}

func TestREADMEHeaderTableIsTheContract(t *testing.T) {
	var got []string
	for line := range strings.SplitSeq(headerContractSection(t), "\n") {
		if strings.HasPrefix(line, "| `") {
			got = append(got, line)
		}
	}
	var want []string
	for _, f := range All() {
		want = append(want, readmeRow(f))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the README's header table differs from the contract; it should read:\n\n| header | value |\n|---|---|\n%s", strings.Join(want, "\n"))
	}
}

var placeholderRef = regexp.MustCompile("`\\{([a-z.]+)\\}`")

func TestREADMEPlaceholderListIsTheContract(t *testing.T) {
	_, list, ok := strings.Cut(headerContractSection(t), "The same facts are placeholders")
	if !ok {
		t.Fatal("the README's header contract lists no placeholders")
	}
	list, _, _ = strings.Cut(list, "\n\n")
	var got []string
	for _, m := range placeholderRef.FindAllStringSubmatch(list, -1) {
		got = append(got, m[1])
	}
	// wijgate's own placeholders in the facts' order, the app's, then
	// the further names some facts also answer under.
	var want, further []string
	for _, f := range All() {
		if ps := f.Placeholders(); len(ps) > 0 {
			want = append(want, ps[0])
			further = append(further, ps[1:]...)
		}
	}
	want = append(append(want, AppPlaceholder), further...)
	if !slices.Equal(got, want) {
		t.Fatalf("the README lists the placeholders %q, the contract has %q", got, want)
	}
}

func TestREADMENamesEveryCookie(t *testing.T) {
	section := headerContractSection(t)
	for _, name := range Cookies(SessionCookie) {
		if !strings.Contains(section, "`"+name+"`") {
			t.Errorf("the README's header contract does not name the cookie %s that the guard removes", name)
		}
	}
}
