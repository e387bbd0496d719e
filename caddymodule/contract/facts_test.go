package contract

import "testing"

func TestPercentEncoding(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Jan Janssen", "Jan Janssen"},
		{"Jan Jänssen", "Jan J%C3%A4nssen"},
		{"100% zeker", "100%25 zeker"},
		{"line\r\nX-Evil: 1", "line%0D%0AX-Evil: 1"},
		{"tab\there", "tab%09here"},
	} {
		if got := Percent.Encode(tc.in); got != tc.want {
			t.Errorf("Percent.Encode(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := Plain.Encode(tc.in); got != tc.in {
			t.Errorf("Plain.Encode(%q) = %q", tc.in, got)
		}
	}
}
